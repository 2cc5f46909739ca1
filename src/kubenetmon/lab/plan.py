"""From a topology to the exact commands that build it: namespace names, links, addresses, routes, sysctls.

Pure: nothing here touches the system, so the whole wiring can be read (and unit-tested) as data.

    pods ──veth── node (cbr0 bridge, or one /32 veth per pod) ──veth── router br0 ──veth── external
                  node eth0 198.18.0.1N/24                       198.18.0.1/24

Nodes reach each other's pod CIDRs directly over the router's bridge (one L2 underlay); the router
routes to the externals. Only lab ranges and the externals' own addresses are routed anywhere: no
namespace has a default route, and none has a link to the root namespace.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from kubenetmon.lab import nft, ranges
from kubenetmon.lab.topology import External, Node, Pod, Topology

NODE_UPLINK = "eth0"
POD_LINK = "eth0"
BRIDGE = "cbr0"
ROUTER_BRIDGE = "br0"

_QUIET_HOST = {
    # Addresses are usable at once and hosts do not solicit routers: less noise, no waiting.
    "net.ipv6.conf.all.accept_dad": 0,
    "net.ipv6.conf.default.accept_dad": 0,
    "net.ipv6.conf.all.router_solicitations": 0,
    "net.ipv6.conf.default.router_solicitations": 0,
}
_FORWARDING = {"net.ipv4.ip_forward": 1, "net.ipv6.conf.all.forwarding": 1}
ACCOUNTING = {"net.netfilter.nf_conntrack_acct": 1, "net.netfilter.nf_conntrack_events": 1}
"""Set in every node unless the lab is asked to keep a new netns's defaults (acct=0, events=2)."""
_BRIDGE_NETFILTER = {"net.bridge.bridge-nf-call-iptables": 1, "net.bridge.bridge-nf-call-ip6tables": 1}


@dataclass(frozen=True, slots=True)
class NamespaceNames:
    """Names of a lab's namespaces; all start with the lab's random prefix, e.g. `knm-3fa2c1-`."""

    prefix: str

    @property
    def router(self) -> str:
        """The router (underlay bridge, routes to externals)."""
        return f"{self.prefix}router"

    def node(self, name: str) -> str:
        """A node's namespace."""
        return f"{self.prefix}n-{name}"

    def pod(self, key: str) -> str:
        """A pod's namespace, from its `namespace/name` key."""
        return f"{self.prefix}p-{key.replace('/', '.')}"

    def external(self, name: str) -> str:
        """An external endpoint's namespace."""
        return f"{self.prefix}x-{name}"

    def all(self, topology: Topology) -> list[str]:
        """Every namespace of the topology, router first."""
        return [
            self.router,
            *(self.node(node.name) for node in topology.nodes),
            *(self.pod(pod.key) for pod in topology.pods),
            *(self.external(external.name) for external in topology.externals),
        ]


@dataclass(slots=True)
class Plan:
    """Everything `Lab.up` runs, in order: namespaces, sysctls, veths, `ip` batches, nft, node sysctls."""

    namespaces: list[str]
    sysctls: dict[str, dict[str, int]] = field(default_factory=dict)
    """Set before any link exists, so new interfaces inherit them (no DAD, no router solicitations)."""
    node_sysctls: dict[str, dict[str, int]] = field(default_factory=dict)
    """Conntrack and bridge-netfilter knobs, set after nft: only then do their files exist on kernels
    that build conntrack as a module (it loads with the first rule that needs it)."""
    veths: list[str] = field(default_factory=list)
    """Root `ip -batch` lines; each creates both ends directly inside their namespaces."""
    commands: dict[str, list[str]] = field(default_factory=dict)
    nft: dict[str, str] = field(default_factory=dict)

    def run_in(self, netns: str, *lines: str) -> None:
        """Append `ip` batch lines for `netns`."""
        self.commands.setdefault(netns, []).extend(lines)

    def veth(self, first_ns: str, first: str, second_ns: str, second: str) -> None:
        """A veth pair from `first` in `first_ns` to `second` in `second_ns`."""
        self.veths.append(f"link add {first} netns {first_ns} type veth peer name {second} netns {second_ns}")


def _addresses(device: str, v4: str, v6: str) -> tuple[str, str]:
    """`ip` lines giving `device` an IPv4 and an IPv6 address (the latter usable at once, no DAD)."""
    return f"addr add {v4} dev {device}", f"addr add {v6} dev {device} nodad"


def plan(topology: Topology, names: NamespaceNames, *, conntrack_accounting: bool = True) -> Plan:
    """The full build of `topology` under `names`."""
    result = Plan(namespaces=names.all(topology))
    for netns in result.namespaces:
        result.sysctls[netns] = dict(_QUIET_HOST)
    _router(result, topology, names)
    pods = {pod.key: pod for pod in topology.pods}
    for node in topology.nodes:
        _node(result, topology, names, node, accounting=conntrack_accounting)
        result.nft[names.node(node.name)] = (
            nft.cluster_ruleset(topology.services, pods, topology.externals) + nft.truth_ruleset()
        )
    for index, external in enumerate(topology.externals):
        _external(result, names, external, index)
    return result


def _router(result: Plan, topology: Topology, names: NamespaceNames) -> None:
    router = names.router
    result.sysctls[router].update(_FORWARDING)
    result.run_in(
        router,
        f"link add {ROUTER_BRIDGE} type bridge mcast_snooping 0",
        *_addresses(
            ROUTER_BRIDGE,
            f"{ranges.ROUTER_V4}/{ranges.UNDERLAY_V4.prefixlen}",
            f"{ranges.ROUTER_V6}/{ranges.UNDERLAY_V6.prefixlen}",
        ),
        f"link set {ROUTER_BRIDGE} up",
    )
    for index, node in enumerate(topology.nodes):
        leg = f"n{index}"
        result.veth(router, leg, names.node(node.name), NODE_UPLINK)
        result.run_in(
            router,
            f"link set {leg} master {ROUTER_BRIDGE} up",
            f"route add {node.pod_cidr_v4} via {node.ipv4}",
            f"route add {node.pod_cidr_v6} via {node.ipv6}",
        )


def _node(result: Plan, topology: Topology, names: NamespaceNames, node: Node, *, accounting: bool) -> None:
    netns = names.node(node.name)
    result.sysctls[netns].update(_FORWARDING)
    result.node_sysctls[netns] = dict(ACCOUNTING) if accounting else {}
    result.run_in(
        netns,
        *_addresses(
            NODE_UPLINK,
            f"{node.ipv4}/{ranges.UNDERLAY_V4.prefixlen}",
            f"{node.ipv6}/{ranges.UNDERLAY_V6.prefixlen}",
        ),
        f"link set {NODE_UPLINK} up",
    )
    for other in topology.nodes:
        if other.name != node.name:
            result.run_in(
                netns,
                f"route add {other.pod_cidr_v4} via {other.ipv4}",
                f"route add {other.pod_cidr_v6} via {other.ipv6}",
            )
    for external in topology.externals:
        result.run_in(
            netns,
            f"route add {external.ipv4}/32 via {ranges.ROUTER_V4}",
            f"route add {external.ipv6}/128 via {ranges.ROUTER_V6}",
        )
    if node.cni == "bridge":
        result.node_sysctls[netns].update(_BRIDGE_NETFILTER)
        _bridge(result, names, node, topology.pods_on(node.name))
    else:
        _routed(result, names, node, topology.pods_on(node.name))
    for pod in topology.pods_on(node.name):
        _pod_routes(result, names.pod(pod.key), node, topology.externals)


def _bridge(result: Plan, names: NamespaceNames, node: Node, pods: tuple[Pod, ...]) -> None:
    netns = names.node(node.name)
    v4_len = ipaddress.ip_network(node.pod_cidr_v4).prefixlen
    v6_len = ipaddress.ip_network(node.pod_cidr_v6).prefixlen
    result.run_in(
        netns,
        f"link add {BRIDGE} type bridge mcast_snooping 0",
        *_addresses(BRIDGE, f"{node.gateway(4)}/{v4_len}", f"{node.gateway(6)}/{v6_len}"),
        f"link set {BRIDGE} up",
    )
    for index, pod in enumerate(pods):
        leg = f"p{index}"
        result.veth(netns, leg, names.pod(pod.key), POD_LINK)
        result.run_in(netns, f"link set {leg} master {BRIDGE} up")
        result.run_in(
            names.pod(pod.key),
            *_addresses(POD_LINK, f"{pod.ipv4}/{v4_len}", f"{pod.ipv6}/{v6_len}"),
            f"link set {POD_LINK} up",
        )


def _routed(result: Plan, names: NamespaceNames, node: Node, pods: tuple[Pod, ...]) -> None:
    netns = names.node(node.name)
    for index, pod in enumerate(pods):
        leg = f"p{index}"
        result.veth(netns, leg, names.pod(pod.key), POD_LINK)
        result.run_in(
            netns,
            *_addresses(leg, f"{node.gateway(4)}/32", f"{node.gateway(6)}/128"),
            f"link set {leg} up",
            f"route add {pod.ipv4}/32 dev {leg}",
            f"route add {pod.ipv6}/128 dev {leg}",
        )
        result.run_in(
            names.pod(pod.key),
            *_addresses(POD_LINK, f"{pod.ipv4}/32", f"{pod.ipv6}/128"),
            f"link set {POD_LINK} up",
            f"route add {node.gateway(4)}/32 dev {POD_LINK} scope link",
            f"route add {node.gateway(6)}/128 dev {POD_LINK}",
        )


def _pod_routes(result: Plan, netns: str, node: Node, externals: tuple[External, ...]) -> None:
    gateway4, gateway6 = node.gateway(4), node.gateway(6)
    result.run_in(
        netns,
        f"route add {ranges.LAB_V4} via {gateway4} dev {POD_LINK}",
        f"route add {ranges.LAB_V6} via {gateway6} dev {POD_LINK}",
        *(f"route add {external.ipv4}/32 via {gateway4} dev {POD_LINK}" for external in externals),
        *(f"route add {external.ipv6}/128 via {gateway6} dev {POD_LINK}" for external in externals),
    )


def _external(result: Plan, names: NamespaceNames, external: External, index: int) -> None:
    router, netns, leg = names.router, names.external(external.name), f"x{index}"
    result.veth(router, leg, netns, POD_LINK)
    result.run_in(
        router,
        *_addresses(leg, f"{ranges.ROUTER_V4}/32", f"{ranges.ROUTER_V6}/128"),
        f"link set {leg} up",
        f"route add {external.ipv4}/32 dev {leg}",
        f"route add {external.ipv6}/128 dev {leg}",
    )
    result.run_in(
        netns,
        *_addresses(POD_LINK, f"{external.ipv4}/32", f"{external.ipv6}/128"),
        f"link set {POD_LINK} up",
        f"route add {ranges.ROUTER_V4}/32 dev {POD_LINK} scope link",
        f"route add {ranges.ROUTER_V6}/128 dev {POD_LINK}",
        f"route add {ranges.LAB_V4} via {ranges.ROUTER_V4} dev {POD_LINK}",
        f"route add {ranges.LAB_V6} via {ranges.ROUTER_V6} dev {POD_LINK}",
    )
