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
import contextlib
import logging
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from kubenetmon.lab import netns, nft, ranges, state
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
        self.id = lab_id or _unused_id(state_dir)
        self.names = NamespaceNames(f"{PREFIX_ROOT}{self.id}-")
        self.kept = False
        self._spawned: list[subprocess.Popen[bytes]] = []
        self._owned: list[str] = []
        """Namespaces this handle created (or, when attached, that its record names): all it may delete."""

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
        lab._owned = list(record.namespaces)
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
        """Build everything; on any failure, remove what was built and re-raise.

        LabError, before anything is created, if a namespace of this lab's names or a record of its id
        already exists: a lab only ever deletes what it created itself.
        """
        if self._owned:
            return self
        steps = plan(self.topology, self.names, conntrack_accounting=self.conntrack_accounting)
        if state.record_path(self.state_dir, self.id).exists():
            raise LabError(f"lab {self.id} is already recorded in {self.state_dir}")
        taken = set(steps.namespaces) & netns.existing_namespaces()
        if taken:
            raise LabError(f"network namespaces already exist: {', '.join(sorted(taken))}")
        self._owned = list(steps.namespaces)
        self._write_record()
        _register(self)
        try:
            netns.add_namespaces(steps.namespaces)
            for name, values in steps.sysctls.items():
                netns.write_sysctls(name, values)
            netns.ip_batch(steps.veths)
            for name, lines in steps.commands.items():
                netns.ip_batch(lines, netns=name)
            for name, script in steps.nft.items():
                netns.netns_run(name, ["nft", "-f", "-"], stdin=script)
            for name, values in steps.node_sysctls.items():
                netns.write_sysctls(name, values)
            _wait_until_ipv6_ready(steps.namespaces)
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
        if self._owned:
            _delete(self.id, self._owned, self.state_dir)
        self._owned = []
        _unregister(self)

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

    def hosts(self) -> list[Host]:
        """Every place of the lab with its namespace and addresses, router first (for listings)."""
        router = Host("router", "router", self.names.router, str(ranges.ROUTER_V4), str(ranges.ROUTER_V6))
        nodes = [
            Host("node", n.name, self.netns(n), n.ipv4, n.ipv6, zone=n.zone, region=n.region)
            for n in self.topology.nodes
        ]
        pods = [
            Host(
                "pod", p.key, self.netns(p), p.ipv4, p.ipv6, node=p.node, zone=self.topology.node(p.node).zone
            )
            for p in self.topology.pods
        ]
        externals = [
            Host("external", e.name, self.netns(e), e.ipv4, e.ipv6, region=e.region)
            for e in self.topology.externals
        ]
        return [router, *nodes, *pods, *externals]

    def netns(self, where: Where) -> str:
        """The namespace name of a place (see `Where`)."""
        if where == "router":
            return self.names.router
        place = self.resolve(where)
        if isinstance(place, Node):
            return self.names.node(place.name)
        if isinstance(place, Pod):
            return self.names.pod(place.key)
        return self.names.external(place.name)

    def resolve(self, where: Where) -> Node | Pod | External:
        """The node, pod or external a place names (`namespace/name` is a pod; other names are unique)."""
        if not isinstance(where, str):
            return where
        if "/" in where:
            return self.topology.pod(where)
        hosts: list[Node | External] = [*self.topology.nodes, *self.topology.externals]
        for host in hosts:
            if host.name == where:
                return host
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


def _wait_until_ipv6_ready(namespaces: Sequence[str], timeout: float = 5.0) -> None:
    """Wait until IPv6 has brought up every interface (it then adds the link-local address).

    The kernel does that when it processes the carrier change, up to a second after `link set up`.
    Before it, an interface has not joined its addresses' solicited-node groups and drops neighbour
    solicitations for them, so the first IPv6 packet between two hosts would stall for a 1 s retransmit.
    """
    deadline = time.monotonic() + timeout
    pending = list(namespaces)
    while pending:
        pending = [name for name in pending if netns.interfaces_not_ready(name)]
        if pending and time.monotonic() > deadline:
            raise LabError(f"IPv6 did not come up within {timeout} s on interfaces of {', '.join(pending)}")
        if pending:
            time.sleep(0.02)


def _unused_id(state_dir: Path) -> str:
    while True:
        candidate = secrets.token_hex(3)
        prefix = f"{PREFIX_ROOT}{candidate}-"
        in_use = any(name.startswith(prefix) for name in netns.existing_namespaces())
        if not in_use and not state.record_path(state_dir, candidate).exists():
            return candidate


@dataclass(frozen=True, slots=True)
class Host:
    """One place of a lab, for listings: what it is, its namespace and its addresses."""

    kind: str
    """router, node, pod or external."""
    name: str
    netns: str
    ipv4: str
    ipv6: str
    node: str | None = None
    zone: str | None = None
    region: str | None = None


def tear_down_recorded(record: state.LabRecord, state_dir: Path = state.STATE_DIR) -> list[str]:
    """Delete the namespaces a lab record names (only names under the lab's own prefix), then the record.

    Returns the namespaces deleted. For labs left up by `keep()` or by a process that died.
    """
    if not record.prefix.startswith(PREFIX_ROOT):
        raise LabError(
            f"lab record {record.id}: prefix {record.prefix!r} is not a lab prefix; not touching it"
        )
    foreign = [name for name in record.namespaces if not name.startswith(record.prefix)]
    if foreign:
        raise LabError(f"lab record {record.id} names namespaces outside its prefix: {', '.join(foreign)}")
    return _delete(record.id, record.namespaces, state_dir)


def _delete(lab_id: str, namespaces: Sequence[str], state_dir: Path) -> list[str]:
    deleted = netns.delete_namespaces(namespaces)
    left = set(namespaces) & netns.existing_namespaces()
    if left:
        raise LabError(f"lab {lab_id}: could not delete namespaces {', '.join(sorted(left))}")
    state.remove_record(state_dir, lab_id)
    return deleted


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group `spawn` started, SIGKILL it if it lingers, and reap it."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=2)


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
