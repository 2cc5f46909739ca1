"""Metered bytes against the lab's ground truth, per flow, pair and billing class.

Expectations come from the topology alone, never from attribution's output: who holds each address,
which billing class a pair of endpoints has, and which node must carry a byte's count-once row (the
sender's node when the sender is in the cluster, else the receiver's). Three checks:

* count once: per flow direction, the count-once rows (over all observation points) hold what the
  counting node's truth counters saw; they come from that node only;
* per observation point: per flow direction, all rows a node reported hold what that node saw, so
  nothing is counted twice within an observation point;
* attribution: every row names the sender's and receiver's pods, workloads, zones, regions and cloud
  service as the topology has them, and the expected billing class.

`excused` bytes are losses a scenario predicts (an agent down while flows come and go); they are
subtracted from the truth before comparing, and reported apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kubenetmon.demo.observed import Facts, FlowKey, NodeFlow, PairKey, StoredBytes
from kubenetmon.lab import External, Node, Pod, Topology
from kubenetmon.records import BillingClass, proto_name

CLASS_ORDER = ("same-zone", "cross-zone", "cross-region", "cloud-service", "internet", "unknown")


class LabDirectory:
    """Who holds each lab address, and what attribution should say about it, from the topology only."""

    def __init__(self, topology: Topology, cloud: str) -> None:
        self.topology = topology
        self.cloud = cloud
        self._places: dict[str, Pod | External | Node] = {}
        places: list[Pod | External | Node] = [*topology.pods, *topology.externals, *topology.nodes]
        for place in places:
            self._places[place.ipv4] = place
            self._places[place.ipv6] = place

    def place(self, ip: str) -> Pod | External | Node | None:
        """The pod, external or node holding `ip` (normalised spelling), if any."""
        return self._places.get(ip)

    def facts(self, ip: str) -> Facts:
        """What a row must say about the endpoint at `ip`."""
        place = self.place(ip)
        if isinstance(place, Pod):
            node = self.topology.node(place.node)
            kind = place.workload_kind if place.workload else ""
            return Facts(
                place.namespace, place.name, place.workload or "", kind, node.zone, node.region, self.cloud
            )
        if isinstance(place, Node):
            return Facts(zone=place.zone, region=place.region, cloud=self.cloud)
        if isinstance(place, External) and place.kind == "cloud-service":
            return Facts(
                region=place.region or "", cloud=place.cloud or "", cloud_service=place.service or ""
            )
        return Facts()

    def node_of(self, ip: str) -> Node | None:
        """The cluster node an address lives on (a pod's node, or the node itself)."""
        place = self.place(ip)
        if isinstance(place, Pod):
            return self.topology.node(place.node)
        return place if isinstance(place, Node) else None

    def expected_class(self, pair: PairKey) -> str:
        """The billing class of bytes between two endpoints, as a cloud bill would put it."""
        nodes = [self.node_of(pair.sender), self.node_of(pair.receiver)]
        if nodes[0] is not None and nodes[1] is not None:
            if nodes[0].region != nodes[1].region:
                return BillingClass.CROSS_REGION.value
            return (
                BillingClass.SAME_ZONE if nodes[0].zone == nodes[1].zone else BillingClass.CROSS_ZONE
            ).value
        inside = nodes[0] or nodes[1]
        other = self.place(pair.receiver if nodes[0] is not None else pair.sender)
        if inside is None or not isinstance(other, External):
            return BillingClass.UNKNOWN.value
        if other.kind == "internet":
            return BillingClass.INTERNET.value
        if other.region == inside.region:
            return BillingClass.CLOUD_SERVICE.value
        return BillingClass.CROSS_REGION.value

    def counting_node(self, flow: FlowKey) -> str | None:
        """The node whose rows carry these bytes once: the sender's if in the cluster, else the receiver's."""
        node = self.node_of(flow.src) or self.node_of(flow.dst)
        return node.name if node is not None else None


@dataclass(slots=True)
class Tally:
    """Bytes of one class (or pair, or observation point): truth, metered, and how they differ."""

    truth: int = 0
    metered: int = 0
    lost: int = 0
    """Truth bytes missing from the store, summed per flow direction."""
    duplicated: int = 0
    """Stored bytes beyond the truth, summed per flow direction."""
    excused: int = 0
    """Part of `truth` the scenario predicts cannot be metered (see the module docstring)."""
    flows: int = 0

    @property
    def ratio(self) -> float:
        """metered / truth (1.0 when both are zero)."""
        if self.truth == 0:
            return 1.0 if self.metered == 0 else float("inf")
        return self.metered / self.truth

    def add(self, truth: int, metered: int, excused: int) -> None:
        """One flow direction's numbers."""
        self.truth += truth
        self.metered += metered
        self.excused += excused
        self.lost += max(0, truth - metered)
        self.duplicated += max(0, metered - truth)
        self.flows += 1

    def within(self, tolerance: float) -> bool:
        """Metered equals truth minus excused within `tolerance` (a fraction of the truth)."""
        return abs(self.metered - (self.truth - self.excused)) <= tolerance * self.truth


@dataclass(frozen=True, slots=True)
class FlowCheck:
    """One flow direction in the count-once view: where it must be counted, and the numbers."""

    node: str
    """The counting node (sender's if in the cluster, else receiver's)."""
    billing_class: str
    truth: int
    """What the counting node's truth counters saw."""
    metered: int
    """Count-once bytes stored for it, over all observation points."""
    excused: int

    @property
    def lost(self) -> int:
        """Truth bytes not stored (0 if none)."""
        return max(0, self.truth - self.metered)


@dataclass(slots=True)
class Verdict:
    """Everything the comparison found."""

    classes: dict[str, Tally] = field(default_factory=dict)
    """Count-once view, per expected billing class (what a bill shows)."""
    pairs: dict[PairKey, Tally] = field(default_factory=dict)
    """Count-once view, per ordered address pair and protocol."""
    points: dict[str, Tally] = field(default_factory=dict)
    """Per observation point: every row a node reported against what that node saw."""
    flows: dict[FlowKey, FlowCheck] = field(default_factory=dict)
    """Count-once view, per flow direction."""
    misattributed: list[str] = field(default_factory=list)
    """Rows whose endpoints, class or count-once node disagree with the topology."""

    def unexplained(self) -> list[str]:
        """Flow directions whose difference from the truth is not exactly the excused loss."""
        return [
            f"{_flow_text(flow)} at {check.node or '?'} ({check.billing_class}): truth {check.truth}, "
            f"metered {check.metered}, predicted loss {check.excused}"
            for flow, check in self.flows.items()
            if check.truth - check.metered != check.excused
        ]

    def pairs_outside(self, tolerance: float) -> list[PairKey]:
        """Pairs whose count-once bytes miss the truth (minus excused) by more than `tolerance`."""
        return [pair for pair, tally in self.pairs.items() if not tally.within(tolerance)]

    def points_outside(self, tolerance: float) -> list[str]:
        """Observation points whose rows miss their own truth (minus excused) by more than `tolerance`."""
        return [node for node, tally in self.points.items() if not tally.within(tolerance)]

    def total(self) -> Tally:
        """All classes together."""
        total = Tally()
        for tally in self.classes.values():
            total.truth += tally.truth
            total.metered += tally.metered
            total.lost += tally.lost
            total.duplicated += tally.duplicated
            total.excused += tally.excused
            total.flows += tally.flows
        return total


def compare(
    directory: LabDirectory,
    truth: Mapping[NodeFlow, int],
    stored: Iterable[StoredBytes],
    excused: Mapping[NodeFlow, int] | None = None,
) -> Verdict:
    """Compare stored bytes with the truth; see the module docstring for the three checks."""
    excused = excused or {}
    entries = list(stored)
    verdict = Verdict(misattributed=_misattributed(directory, entries))
    at_points: dict[NodeFlow, int] = {}
    once: dict[FlowKey, int] = {}
    for entry in entries:
        key = (entry.observation_point, entry.flow)
        at_points[key] = at_points.get(key, 0) + entry.bytes
        if entry.count_once:
            once[entry.flow] = once.get(entry.flow, 0) + entry.bytes
    nodes = {node.name for node in directory.topology.nodes}
    for key in sorted(set(truth) | set(at_points)):
        if key[0] in nodes:
            tally = verdict.points.setdefault(key[0], Tally())
            tally.add(truth.get(key, 0), at_points.get(key, 0), excused.get(key, 0))
    counted_there = {flow for node, flow in truth if directory.counting_node(flow) == node}
    classes: dict[str, Tally] = {}
    for flow in sorted(set(once) | counted_there):
        node = directory.counting_node(flow) or ""
        check = FlowCheck(
            node,
            directory.expected_class(flow.pair),
            truth.get((node, flow), 0),
            once.get(flow, 0),
            excused.get((node, flow), 0),
        )
        verdict.flows[flow] = check
        for tally in (
            classes.setdefault(check.billing_class, Tally()),
            verdict.pairs.setdefault(flow.pair, Tally()),
        ):
            tally.add(check.truth, check.metered, check.excused)
    verdict.classes = {name: classes[name] for name in CLASS_ORDER if name in classes}
    return verdict


def _misattributed(directory: LabDirectory, entries: list[StoredBytes]) -> list[str]:
    """One line per distinct disagreement between a stored row and the topology."""
    found: dict[str, None] = {}
    for entry in entries:
        flow, where = entry.flow, f"{entry.observation_point}: {_flow_text(entry.flow)}"
        for role, facts, ip in (("sender", entry.sender, flow.src), ("receiver", entry.receiver, flow.dst)):
            if facts != (wanted := directory.facts(ip)):
                found[f"{where}: {role} {facts} should be {wanted}"] = None
        if entry.billing_class != (wanted_class := directory.expected_class(flow.pair)):
            found[f"{where}: class {entry.billing_class} should be {wanted_class}"] = None
        if entry.count_once and entry.observation_point != (counter := directory.counting_node(flow)):
            found[f"{where}: a count-once row, but only {counter} should count these bytes"] = None
    return list(found)


def _flow_text(flow: FlowKey) -> str:
    proto = proto_name(flow.proto)
    return f"{proto} {_end(flow.src, flow.sport)} -> {_end(flow.dst, flow.dport)}"


def _end(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"
