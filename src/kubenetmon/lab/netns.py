"""Network namespace plumbing: iproute2 commands, running code inside a namespace, sysctls, teardown.

Namespaces are named files under /run/netns (what `ip netns add` makes). Code that must run *inside* one
(creating a socket, writing a per-netns sysctl) runs on a fresh thread that has called setns(2): network
namespaces are per thread on Linux, and a socket keeps the namespace it was created in, so the socket can
then be used from any thread of this process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from kubenetmon.conntrack.netns import NETNS_RUN_DIR, run_in
from kubenetmon.errors import KubenetmonError


class LabError(KubenetmonError):
    """A lab could not be built, used or torn down; the message carries the failing command's output."""


def run(
    argv: Sequence[str], *, stdin: str | None = None, check: bool = True, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; LabError (with its stderr) when it fails and `check` is set."""
    try:
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabError(f"{' '.join(argv)}: {exc}") from exc
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()
        raise LabError(f"{' '.join(argv)} exited with {done.returncode}: {detail}")
    return done


def netns_run(
    netns: str, argv: Sequence[str], *, stdin: str | None = None, check: bool = True, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run a command inside the namespace `netns` (`ip netns exec`)."""
    return run(["ip", "netns", "exec", netns, *argv], stdin=stdin, check=check, timeout=timeout)


def ip_batch(commands: Iterable[str], netns: str | None = None) -> None:
    """Run many `ip` commands in one process (`ip -batch`), in `netns` if given; stops at the first error."""
    lines = list(commands)
    if not lines:
        return
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    run([*prefix, "-batch", "-"], stdin="\n".join(lines) + "\n")


def existing_namespaces() -> set[str]:
    """Names of all named network namespaces on the host (read-only; used to find what is left over)."""
    try:
        return {entry.name for entry in NETNS_RUN_DIR.iterdir()}
    except FileNotFoundError:
        return set()


def add_namespaces(names: Sequence[str]) -> None:
    """Create named namespaces with loopback up; LabError if any name already exists."""
    taken = existing_namespaces().intersection(names)
    if taken:
        raise LabError(f"network namespaces already exist: {', '.join(sorted(taken))}")
    ip_batch(f"netns add {name}" for name in names)
    for name in names:
        ip_batch(["link set lo up"], netns=name)


def namespace_pids(name: str) -> list[int]:
    """Processes whose network namespace is `name`."""
    done = run(["ip", "netns", "pids", name], check=False)
    return [int(word) for word in done.stdout.split() if word.isdigit()]


def delete_namespaces(names: Iterable[str], grace: float = 2.0) -> list[str]:
    """Kill every process inside the named namespaces, then delete them. Returns the names deleted.

    Names that no longer exist are skipped, so teardown can run twice (context exit, then atexit).
    """
    existing = existing_namespaces()
    present = [name for name in names if name in existing]
    pids = {pid for name in present for pid in namespace_pids(name)}
    pids.discard(os.getpid())
    _terminate(pids, grace)
    for name in present:
        run(["ip", "netns", "del", name], check=False)
    remaining = existing_namespaces()
    return [name for name in present if name not in remaining]


def _terminate(pids: set[int], grace: float) -> None:
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        pids = {pid for pid in pids if _alive(pid)}
        time.sleep(0.02)
    for pid in pids:
        _signal(pid, signal.SIGKILL)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child still answers kill(0); reap it if it is ours.
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return reaped == 0


_IFA_F_TENTATIVE = 0x40


def interfaces_not_ready(netns: str) -> list[str]:
    """Interfaces of `netns` (other than lo) that IPv6 has not brought up yet (no link-local address)."""

    def not_ready() -> list[str]:
        ready = set()
        # thread-self: /proc/self/net would show the main thread's namespace, not this one's.
        for line in Path("/proc/thread-self/net/if_inet6").read_text().splitlines():
            address, _, _, _, flags, name = line.split()
            if address.startswith("fe80") and not int(flags, 16) & _IFA_F_TENTATIVE:
                ready.add(name)
        return [name for _, name in socket.if_nameindex() if name != "lo" and name not in ready]

    return run_in(netns, not_ready)


def write_sysctls(netns: str, values: Mapping[str, int | str]) -> None:
    """Set sysctls (dotted keys, e.g. net.netfilter.nf_conntrack_acct) inside `netns`."""

    def write_all() -> None:
        for key, value in values.items():
            path = _sysctl_path(key)
            try:
                path.write_text(f"{value}\n")
            except FileNotFoundError:
                hint = " (is br_netfilter loaded?)" if key.startswith("net.bridge.") else ""
                raise LabError(f"sysctl {key} does not exist in {netns}{hint}") from None
            except OSError as exc:
                raise LabError(f"sysctl {key}={value} in {netns}: {exc.strerror}") from exc

    run_in(netns, write_all)


def read_sysctl(netns: str, key: str) -> str:
    """The value of one sysctl inside `netns`, stripped."""
    return run_in(netns, lambda: _sysctl_path(key).read_text().strip())


def _sysctl_path(key: str) -> Path:
    if not key.startswith("net.") or ".." in key or "/" in key:
        raise ValueError(f"sysctl {key!r}: only per-netns net.* keys are set by the lab")
    return Path("/proc/sys", *key.split("."))
