"""The nftables rules of a lab node: what makes it a Kubernetes node, and the ground-truth counters.

Two tables per node netns, generated here as nft script text (pure functions) and loaded with `nft -f`:

`inet knm_cluster` does what kube-proxy and the CNI do on a real node:
  * an unhooked chain holding one `ct state new` rule. A netns registers its conntrack hooks only once
    some rule needs conntrack; a ct expression in an `inet` table does that for IPv4 and IPv6 at once.
    The DNAT rules below would too, but this keeps tracking on in a lab without services.
  * ClusterIP DNAT at prerouting: VIP:port -> a random backend's IP:target_port (`numgen random`, as
    kube-proxy's iptables mode picks with `statistic random`).
  * masquerade at postrouting for externals marked `masquerade` (egress SNAT to the node address),
    and for hairpin service traffic (a backend reaching itself through its VIP).

`inet knm_truth` holds the ground truth, computed without conntrack (see `truth` for what it counts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kubenetmon.lab.ranges import Family
from kubenetmon.lab.topology import ClusterIPService, External, Pod

CLUSTER_TABLE = "knm_cluster"
TRUTH_TABLE = "knm_truth"
HOOKS = ("forward", "input", "output")
"""Hooks with truth counters; `truth_set_name(hook, family)` names each one's set."""
TRUTH_SET_SIZE = 262144
"""Elements per truth set; a full set would stop counting new flows, so reading one refuses it."""
_PORTED = "{ tcp, udp, sctp }"
_FAMILIES: tuple[tuple[Family, str], ...] = ((4, "ip"), (6, "ip6"))


def truth_set_name(hook: str, family: int) -> str:
    """The dynamic set counting packets seen at `hook` for IPv`family`, e.g. forward_v4."""
    return f"{hook}_v{family}"


def cluster_ruleset(
    services: Sequence[ClusterIPService], pods: Mapping[str, Pod], externals: Sequence[External]
) -> str:
    """The `inet knm_cluster` table for one node: conntrack on, service DNAT, egress masquerade.

    `pods` maps pod keys (`namespace/name`) to pods, to find the backends' addresses.
    """
    dnat = [rule for service in services for rule in _service_rules(service, pods)]
    masquerade = [
        f"{match} daddr {external.ip(family)} masquerade"
        for external in externals
        if external.masquerade
        for family, match in _FAMILIES
    ]
    # Hairpin: a backend reaching itself through its VIP would get its own address as the source and
    # answer locally, so (like kube-proxy) SNAT that case to the node.
    backends = dict.fromkeys(key for service in services for key in service.backend_keys)
    masquerade += [
        f"ct status dnat {match} saddr {pods[key].ip(family)} {match} daddr {pods[key].ip(family)} masquerade"
        for key in backends
        for family, match in _FAMILIES
    ]
    return "\n".join(
        [
            f"table inet {CLUSTER_TABLE} {{",
            "    chain conntrack_on {",
            "        ct state new",
            "    }",
            *_hooked_chain("services", "type nat hook prerouting priority dstnat", dnat),
            *_hooked_chain("egress", "type nat hook postrouting priority srcnat", masquerade),
            "}",
            "",
        ]
    )


def _service_rules(service: ClusterIPService, pods: Mapping[str, Pod]) -> list[str]:
    rules = []
    for family, match in _FAMILIES:
        backends = ", ".join(
            f"{index} : {pods[key].ip(family)}" for index, key in enumerate(service.backend_keys)
        )
        pick = f"numgen random mod {len(service.backend_keys)} map {{ {backends} }}"
        for proto in service.protocols:
            rules.append(
                f"{match} daddr {service.vip(family)} {proto} dport {service.port} "
                f"dnat {match} to {pick} : {service.target_port}"
            )
    return rules


def truth_ruleset() -> str:
    """The `inet knm_truth` table: per-flow packet and byte counters at forward, input and output."""
    lines = [f"table inet {TRUTH_TABLE} {{"]
    for hook in HOOKS:
        for family, address in ((4, "ipv4_addr"), (6, "ipv6_addr")):
            lines.append(
                f"    set {truth_set_name(hook, family)} {{ "
                f"type {address} . {address} . inet_proto . inet_service . inet_service; "
                f"flags dynamic; size {TRUTH_SET_SIZE}; counter; }}"
            )
    for hook in HOOKS:
        # Loopback packets pass output and then input; conntrack counts them once, at output.
        skip = ["iif lo return"] if hook == "input" else []
        updates = [rule for family in (4, 6) for rule in _update_rules(hook, family)]
        lines += _hooked_chain(f"truth_{hook}", f"type filter hook {hook} priority filter", skip + updates)
    lines += ["}", ""]
    return "\n".join(lines)


def _update_rules(hook: str, family: int) -> list[str]:
    match = "ip" if family == 4 else "ip6"
    nfproto = "ipv4" if family == 4 else "ipv6"
    addresses = f"{match} saddr . {match} daddr . meta l4proto"
    target = f"@{truth_set_name(hook, family)}"
    only = f"meta nfproto {nfproto} meta l4proto"
    return [
        f"{only} {_PORTED} update {target} {{ {addresses} . th sport . th dport }}",
        f"{only} != {_PORTED} update {target} {{ {addresses} . 0 . 0 }}",
    ]


def flush_truth_script() -> str:
    """nft script that empties every truth set (all counters back to zero)."""
    return "".join(
        f"flush set inet {TRUTH_TABLE} {truth_set_name(hook, family)}\n"
        for hook in HOOKS
        for family in (4, 6)
    )


def _hooked_chain(name: str, hook: str, rules: Sequence[str]) -> list[str]:
    return [
        f"    chain {name} {{",
        f"        {hook}; policy accept;",
        *(f"        {rule}" for rule in rules),
        "    }",
    ]
