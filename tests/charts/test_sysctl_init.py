"""The agent chart's init container really enables conntrack accounting, events and timestamps without any
capability.

The chart's premise: UID 0 with every capability dropped may write a network namespace's
net.netfilter sysctls (the kernel checks only the owner bit), once /proc/sys is writable, which the
chart arranges with a hostPath mount. Here the rendered script runs exactly so, in a fresh network
namespace of its own, whose knobs start at the kernel's defaults (acct=0, events=2, timestamp=0).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.charts.rendering import Profile, container, objects, only, template

pytestmark = [pytest.mark.helm, pytest.mark.kernel]

KNOBS = "/proc/sys/net/netfilter"
# Root without any capability: nothing inherited, nothing in the bounding set, no way to gain more.
NO_CAPABILITIES = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]


def _init_command(helm: Path) -> list[str]:
    daemonset = only(objects(template(helm, Profile("kubenetmon-agent", None))), "DaemonSet")
    command = container(daemonset, "conntrack-sysctls", init=True)["command"]
    assert command[-1] == "/host/proc/sys/net/netfilter"
    return [*command[:-1], KNOBS]


def _in_fresh_netns(script: str) -> str:
    completed = subprocess.run(
        ["unshare", "--net", "/bin/sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def _quote(args: list[str]) -> str:
    return " ".join("'" + arg.replace("'", "'\\''") + "'" for arg in args)


def test_init_container_sets_the_three_knobs_as_root_without_capabilities(helm: Path) -> None:
    command = _quote([*NO_CAPABILITIES, *_init_command(helm)])
    knobs = f"{KNOBS}/nf_conntrack_acct {KNOBS}/nf_conntrack_events {KNOBS}/nf_conntrack_timestamp"
    output = _in_fresh_netns(
        f"cat {knobs}; "
        f"{NO_CAPABILITIES[0]} {_quote(NO_CAPABILITIES[1:])} grep CapEff /proc/self/status; "
        f"{command}; "
        f"cat {knobs}"
    )
    assert output.splitlines() == [
        "0",
        "2",
        "0",
        "CapEff:\t0000000000000000",
        "net.netfilter.nf_conntrack_acct = 1",
        "net.netfilter.nf_conntrack_events = 1",
        "net.netfilter.nf_conntrack_timestamp = 1",
        "1",
        "1",
        "1",
    ]


def test_a_non_root_user_cannot_set_them(helm: Path) -> None:
    # The check above is meaningful only if the write is really guarded: an unprivileged UID is refused.
    command = _quote(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *_init_command(helm)])
    output = _in_fresh_netns(f"{command} 2>&1; echo exit=$?; cat {KNOBS}/nf_conntrack_acct")
    assert "Permission denied" in output
    assert output.splitlines()[-2:] == ["exit=2", "0"]
