"""Ready-made topologies: the demo cluster and a minimal two-node lab.

Addresses follow one scheme so they are easy to read in conntrack output: node N has the underlay
address 198.18.0.1N / fd00:db8::1N and the pod CIDRs 198.18.N.0/24 / fd00:db8:N::/64; pods count up
from host 10. VIPs sit in 198.19.0.0/16 and fd00:db8:ffff::/64; externals in TEST-NET and 2001:db8::/32.
"""

from __future__ import annotations

from kubenetmon.lab.topology import ClusterIPService, CniStyle, External, Node, Pod, Topology

REGION = "eu-west-1"
ZONE_A = "eu-west-1a"
ZONE_B = "eu-west-1b"


def numbered_node(index: int, name: str, zone: str, cni: CniStyle, region: str = REGION) -> Node:
    """Node number `index` (1-99) of the address scheme above."""
    return Node(
        name=name,
        zone=zone,
        region=region,
        cni=cni,
        pod_cidr_v4=f"198.18.{index}.0/24",
        pod_cidr_v6=f"fd00:db8:{index:x}::/64",
        ipv4=f"198.18.0.{10 + index}",
        ipv6=f"fd00:db8::{10 + index}",
    )


def pod_on(
    node: Node,
    host: int,
    namespace: str,
    name: str,
    *,
    workload: str | None = None,
    kind: str = "bare",
    app: str | None = None,
) -> Pod:
    """A pod at host number `host` of `node`'s pod CIDRs, labelled `app` when given."""
    return Pod(
        namespace=namespace,
        name=name,
        node=node.name,
        ipv4=node.pod_ip(4, host),
        ipv6=node.pod_ip(6, host),
        workload=workload,
        workload_kind=kind,
        labels={"app": app} if app else {},
    )


def s3_endpoint() -> External:
    """An S3 endpoint in another region (us-east-1), reached without NAT."""
    return External(
        name="s3",
        kind="cloud-service",
        ipv4="203.0.113.10",
        ipv6="2001:db8:3::10",
        region="us-east-1",
        cloud="aws",
        service="s3",
    )


def internet_endpoint() -> External:
    """An internet host; nodes masquerade pod traffic to it to their own address."""
    return External(
        name="internet",
        kind="internet",
        ipv4="198.51.100.10",
        ipv6="2001:db8:100::10",
        masquerade=True,
    )


def two_nodes_topology() -> Topology:
    """node-1 (bridge, eu-west-1a: default/p1a .10, p1b .11), node-2 (routed, eu-west-1b: p2a, p2b).

    Service default/web: 198.19.0.10 / fd00:db8:ffff::10 port 80 -> p2a:8080 (one backend, so tests know
    where a VIP connection lands). Externals: s3 and internet (masqueraded).
    """
    one = numbered_node(1, "node-1", ZONE_A, "bridge")
    two = numbered_node(2, "node-2", ZONE_B, "routed")
    return Topology(
        name="two-nodes",
        nodes=(one, two),
        pods=(
            pod_on(one, 10, "default", "p1a", app="p1a"),
            pod_on(one, 11, "default", "p1b", app="p1b"),
            pod_on(two, 10, "default", "p2a", app="p2a"),
            pod_on(two, 11, "default", "p2b", app="p2b"),
        ),
        services=(
            ClusterIPService(
                namespace="default",
                name="web",
                vip_v4="198.19.0.10",
                vip_v6="fd00:db8:ffff::10",
                port=80,
                target_port=8080,
                backends=("p2a",),
            ),
        ),
        externals=(s3_endpoint(), internet_endpoint()),
    )


def demo_topology() -> Topology:
    """Two zones, three nodes (bridge, routed, bridge), ten pods in shop/batch/monitoring.

    Service shop/api: 198.19.0.10 / fd00:db8:ffff::10 port 80 -> api pods on node-a2 and node-b1, port
    8080. Externals: s3 (aws, us-east-1) and internet (masqueraded).
    """
    a1 = numbered_node(1, "node-a1", ZONE_A, "bridge")
    a2 = numbered_node(2, "node-a2", ZONE_A, "routed")
    b1 = numbered_node(3, "node-b1", ZONE_B, "bridge")
    # (node, host, namespace, pod name, workload, kind); the app label is the workload's (or pod's) name.
    placements = (
        (a1, 10, "shop", "frontend-6c8d9f7b4-x2k4p", "frontend", "Deployment"),
        (a1, 11, "batch", "loader", None, "bare"),
        (a1, 12, "monitoring", "node-exporter-7qk2m", "node-exporter", "DaemonSet"),
        (a2, 10, "shop", "api-5f7b8c6d9-q9w2z", "api", "Deployment"),
        (a2, 11, "shop", "cart-0", "cart", "StatefulSet"),
        (a2, 12, "monitoring", "node-exporter-h8d5n", "node-exporter", "DaemonSet"),
        (b1, 10, "shop", "api-5f7b8c6d9-m3v7r", "api", "Deployment"),
        (b1, 11, "shop", "frontend-6c8d9f7b4-t5j8l", "frontend", "Deployment"),
        (b1, 12, "shop", "cart-1", "cart", "StatefulSet"),
        (b1, 13, "monitoring", "node-exporter-w4c9s", "node-exporter", "DaemonSet"),
    )
    pods = tuple(
        pod_on(node, host, namespace, name, workload=workload, kind=kind, app=workload or name)
        for node, host, namespace, name, workload, kind in placements
    )
    api = ClusterIPService(
        namespace="shop",
        name="api",
        vip_v4="198.19.0.10",
        vip_v6="fd00:db8:ffff::10",
        port=80,
        target_port=8080,
        backends=("api-5f7b8c6d9-q9w2z", "api-5f7b8c6d9-m3v7r"),
    )
    return Topology(
        name="demo",
        nodes=(a1, a2, b1),
        pods=pods,
        services=(api,),
        externals=(s3_endpoint(), internet_endpoint()),
    )
