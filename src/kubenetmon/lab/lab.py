"""`Lab`: a topology brought up in network namespaces, used, and torn down without leftovers.

    with Lab(Topology.two_nodes()) as lab:
        result = traffic.tcp_transfer(lab, "default/p1a", lab.topology.service("default/web"), up=10_000)
        truth = lab.ground_truth(settle=0.05)

Every namespace name starts with a random per-lab prefix, so labs built concurrently never collide, and
teardown deletes exactly the namespaces this lab created (after killing every process inside them).
Teardown runs on context exit (including exceptions and KeyboardInterrupt), at interpreter exit, and on
SIGTERM/SIGHUP when nobody else handles those signals.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from kubenetmon.lab import netns, nft, state
from kubenetmon.lab.netns import LabError
from kubenetmon.lab.plan import NamespaceNames, plan
from kubenetmon.lab.topology import External, Node, Pod, Topology
from kubenetmon.lab.truth import GroundTruth, parse_truth

log = logging.getLogger(__name__)

Where = str | Node | Pod | External
"""A place in the lab: 'router', a node name, a pod key 'namespace/name', an external name, or the object."""
PREFIX_ROOT = "knm-"


class Lab:
    """A running (or about to run) lab. Use it as a context manager, or call `up()` and `down()`."""

    def __init__(
        self,
        topology: Topology,
        *,
        conntrack_accounting: bool = True,
        state_dir: Path = state.STATE_DIR,
        lab_id: str | None = None,
    ) -> None:
        """`conntrack_accounting=False` leaves the nodes at a new netns's acct=0, events=2."""
        self.topology = topology
        self.conntrack_accounting = conntrack_accounting
        self.state_dir = state_dir
        self.id = lab_id or secrets.token_hex(3)
        self.names = NamespaceNames(f"{PREFIX_ROOT}{self.id}-")
        self.kept = False
        self._spawned: list[subprocess.Popen[bytes]] = []
        self._is_up = False

    @property
    def prefix(self) -> str:
        """The prefix of every namespace of this lab."""
        return self.names.prefix

    @property
    def namespaces(self) -> list[str]:
        """Every namespace of this lab, router first."""
        return self.names.all(self.topology)

    @classmethod
    def attach(cls, lab_id: str, state_dir: Path = state.STATE_DIR) -> Lab:
        """A handle on a lab another process brought up (e.g. `kubenetmon lab up`); it is not torn down."""
        record = state.read_record(state_dir, lab_id)
        lab = cls(
            Topology.from_dict(record.topology),
            conntrack_accounting=record.conntrack_accounting,
            state_dir=state_dir,
            lab_id=record.id,
        )
        lab.kept = True
        return lab

    # -- lifecycle -------------------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.kept:
            self.down()

    def up(self) -> Lab:
        """Build everything; on any failure, remove what was built and re-raise."""
        if self._is_up:
            return self
        steps = plan(self.topology, self.names, conntrack_accounting=self.conntrack_accounting)
        self._write_record()
        _register(self)
        self._is_up = True
        try:
            netns.add_namespaces(steps.namespaces)
            for name, values in steps.sysctls.items():
                netns.write_sysctls(name, values)
            netns.ip_batch(steps.veths)
            for name, lines in steps.commands.items():
                netns.ip_batch(lines, netns=name)
            for name, script in steps.nft.items():
                netns.netns_run(name, ["nft", "-f", "-"], stdin=script)
        except BaseException:
            self.down()
            raise
        log.info("lab %s up: %d namespaces", self.id, len(steps.namespaces))
        return self

    def down(self) -> None:
        """Kill what runs in the lab, delete its namespaces and its record. Safe to call twice."""
        for process in self._spawned:
            _stop(process)
        self._spawned.clear()
        netns.delete_namespaces(self.namespaces)
        left = set(self.namespaces) & netns.existing_namespaces()
        if left:
            raise LabError(f"lab {self.id}: could not delete namespaces {', '.join(sorted(left))}")
        state.remove_record(self.state_dir, self.id)
        _unregister(self)
        self._is_up = False

    def keep(self) -> None:
        """Leave the lab up when this process exits (what `kubenetmon lab up` does)."""
        self.kept = True
        self._write_record()

    def _write_record(self) -> None:
        state.write_record(
            self.state_dir,
            state.LabRecord(
                id=self.id,
                prefix=self.prefix,
                namespaces=tuple(self.namespaces),
                owner_pid=os.getpid(),
                created=time.time(),
                kept=self.kept,
                conntrack_accounting=self.conntrack_accounting,
                topology=self.topology.to_dict(),
            ),
        )

    # -- places ----------------------------------------------------------------------------------------

    def netns(self, where: Where) -> str:
        """The namespace name of a place (see `Where`)."""
        if isinstance(where, Node):
            return self.names.node(where.name)
        if isinstance(where, Pod):
            return self.names.pod(where.key)
        if isinstance(where, External):
            return self.names.external(where.name)
        if where == "router":
            return self.names.router
        if "/" in where:
            return self.names.pod(self.topology.pod(where).key)
        if any(node.name == where for node in self.topology.nodes):
            return self.names.node(where)
        if any(external.name == where for external in self.topology.externals):
            return self.names.external(where)
        raise KeyError(f"{where!r} is neither 'router', a node, a pod key (namespace/name) nor an external")

    def run(
        self,
        where: Where,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command to completion inside a place's namespace; LabError on failure when `check`."""
        return netns.netns_run(self.netns(where), argv, stdin=stdin, check=check, timeout=timeout)

    def spawn(self, where: Where, argv: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
        """Start a long-running command inside a place's namespace; it is killed at teardown."""
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.netns(where), *argv], start_new_session=True, **popen
        )
        self._spawned.append(process)
        return process

    # -- kernel knobs ----------------------------------------------------------------------------------

    def set_sysctls(self, where: Where, values: Mapping[str, int | str]) -> None:
        """Set per-netns sysctls (dotted net.* keys) in a place's namespace."""
        netns.write_sysctls(self.netns(where), values)

    def sysctl(self, where: Where, key: str) -> str:
        """Read one per-netns sysctl."""
        return netns.read_sysctl(self.netns(where), key)

    def set_conntrack_timeouts(self, nodes: Iterable[str] | None = None, **timeouts: int) -> None:
        """Set conntrack timeouts (seconds) in nodes (default: all), e.g. tcp_timeout_time_wait=5.

        Keyword names are the sysctl names without `nf_conntrack_`: tcp_timeout_time_wait,
        tcp_timeout_close, tcp_timeout_established, udp_timeout, udp_timeout_stream, icmp_timeout, ...
        """
        values = {f"net.netfilter.nf_conntrack_{name}": seconds for name, seconds in timeouts.items()}
        for node in self._node_names(nodes):
            self.set_sysctls(node, values)

    # -- ground truth ----------------------------------------------------------------------------------

    def ground_truth(self, nodes: Iterable[str] | None = None, *, settle: float = 0.0) -> GroundTruth:
        """Read the truth counters of nodes (default: all).

        With `settle` > 0, read again every `settle` seconds until two readings agree (at most 50
        times), so packets still in flight (a final ACK) are counted.
        """
        names = self._node_names(nodes)
        reading = self._read_truth(names)
        for _ in range(50 if settle > 0 else 0):
            time.sleep(settle)
            again = self._read_truth(names)
            if again == reading:
                break
            reading = again
        return reading

    def reset_ground_truth(self, nodes: Iterable[str] | None = None) -> None:
        """Empty the truth sets of nodes (default: all): every counter starts again from zero."""
        for node in self._node_names(nodes):
            self.run(node, ["nft", "-f", "-"], stdin=nft.flush_truth_script())

    def _read_truth(self, nodes: list[str]) -> GroundTruth:
        records = []
        for node in nodes:
            listing = self.run(node, ["nft", "-j", "-n", "list", "table", "inet", nft.TRUTH_TABLE])
            records += parse_truth(node, listing.stdout)
        return GroundTruth(records)

    def _node_names(self, nodes: Iterable[str] | None) -> list[str]:
        if nodes is None:
            return [node.name for node in self.topology.nodes]
        names = list(nodes)
        for name in names:
            self.topology.node(name)
        return names


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=2)
    except ProcessLookupError:
        pass


# -- safety net: labs still up when the process ends ------------------------------------------------

_live: dict[str, Lab] = {}
_live_lock = threading.Lock()
_net_installed = False


def _register(lab: Lab) -> None:
    global _net_installed  # noqa: PLW0603 - one process-wide safety net
    with _live_lock:
        _live[lab.id] = lab
        if _net_installed:
            return
        _net_installed = True
    atexit.register(_tear_down_live)
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) == signal.SIG_DFL:
                signal.signal(signum, _on_signal)


def _unregister(lab: Lab) -> None:
    with _live_lock:
        _live.pop(lab.id, None)


def _tear_down_live() -> None:
    with _live_lock:
        labs = [lab for lab in _live.values() if not lab.kept]
    for lab in labs:
        try:
            lab.down()
        except Exception:
            log.exception("tearing down lab %s failed; `kubenetmon lab down` will retry", lab.id)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _tear_down_live()
    raise SystemExit(128 + signum)
