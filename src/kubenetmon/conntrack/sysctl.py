"""The per-namespace conntrack knobs under /proc/sys/net/netfilter: read, set, and say why they matter.

/proc/sys/net shows the namespace of the thread that opens it, so every access goes through
`netns.run_in` when a namespace name is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubenetmon.conntrack import netns

NETFILTER_SYSCTLS = Path("/proc/sys/net/netfilter")


@dataclass(frozen=True, slots=True)
class Knob:
    """A conntrack sysctl the agent depends on, the value it needs and why."""

    name: str
    wanted: int
    why: str


ACCT = Knob(
    "nf_conntrack_acct",
    1,
    "without it the kernel keeps no byte counters; entries created while it is 0 never get any",
)
EVENTS = Knob(
    "nf_conntrack_events",
    1,
    "with the default 2, flows created while no event listener existed never send their DESTROY",
)
TIMESTAMP = Knob(
    "nf_conntrack_timestamp",
    1,
    "without start times a closed flow and its successor on the same tuple can share an id and counters, "
    "and the successor is taken for a repeated event and not counted",
)
NEEDED = (ACCT, EVENTS, TIMESTAMP)


def read(name: str, namespace: str | None = None) -> int | None:
    """The integer value of net.netfilter.<name>, or None when the sysctl does not exist."""
    path = NETFILTER_SYSCTLS / name

    def read_value() -> int | None:
        try:
            return int(path.read_text().split()[0])
        except FileNotFoundError:
            return None

    return netns.run_in(namespace, read_value)


def write(name: str, value: int, namespace: str | None = None) -> None:
    """Set net.netfilter.<name>; raises OSError (PermissionError, read-only file system) when not allowed."""
    path = NETFILTER_SYSCTLS / name
    netns.run_in(namespace, lambda: path.write_text(f"{value}\n"))


def command(knob: Knob) -> str:
    """The shell command that fixes a knob, for log lines and `doctor`."""
    return f"sysctl -w net.netfilter.{knob.name}={knob.wanted}"
