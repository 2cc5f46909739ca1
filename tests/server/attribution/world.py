"""A small dict-backed world for attribution tests: three nodes in two zones, four pods, one Service.

node-a  zone-a  198.18.0.1   pods a1 198.18.1.10 + fd00:db8:1::10, a2 198.18.1.11
node-b  zone-b  198.18.0.2   pod  b1 198.18.2.10 (backend of shop/web on 8080)
node-c  zone-a  198.18.0.3   pod  c1 198.18.3.10
shop/web  ClusterIP 198.19.0.10:80, NodePort 30080 on every node address
cloud ranges: 198.51.100.0/24 aws s3 us-east-1, 192.0.2.0/25 gcp europe-west1, 2001:db8:1::/48 azure
storage westeurope
"""

from __future__ import annotations

from kubenetmon.records import Endpoint, EndpointKind, FlowRecord
from kubenetmon.server.attribution.attribute import Attributor
from kubenetmon.server.attribution.lookups import Lookups
from kubenetmon.server.attribution.settings import AttributionSettings
from kubenetmon.server.cloud.ranges import PrefixTable

NODES = {
    "node-a": Endpoint(EndpointKind.NODE, zone="zone-a", node="node-a"),
    "node-b": Endpoint(EndpointKind.NODE, zone="zone-b", node="node-b"),
    "node-c": Endpoint(EndpointKind.NODE, zone="zone-a", node="node-c"),
}
NODE_IPS = {"198.18.0.1": "node-a", "198.18.0.2": "node-b", "198.18.0.3": "node-c"}


def _pod(name: str, node: str) -> Endpoint:
    return Endpoint(
        EndpointKind.POD, zone=NODES[node].zone, node=node, namespace="shop", pod=name, app=name[0]
    )


PODS = {
    "198.18.1.10": _pod("a1", "node-a"),
    "198.18.1.11": _pod("a2", "node-a"),
    "198.18.2.10": _pod("b1", "node-b"),
    "198.18.3.10": _pod("c1", "node-c"),
}
PODS["fd00:db8:1::10"] = PODS["198.18.1.10"]
VIP, NODE_PORT = "198.19.0.10", 30080
S3 = Endpoint(EndpointKind.CLOUD, cloud="aws", region="us-east-1", cloud_service="s3")
CLOUD = PrefixTable(
    [
        ("198.51.100.0/24", S3),
        (
            "192.0.2.0/25",
            Endpoint(EndpointKind.CLOUD, cloud="gcp", region="europe-west1", cloud_service="googlecloud"),
        ),
        (
            "2001:db8:1::/48",
            Endpoint(EndpointKind.CLOUD, cloud="azure", region="westeurope", cloud_service="azurestorage"),
        ),
        (
            "203.0.113.128/25",
            Endpoint(EndpointKind.CLOUD, cloud="aws", region="eu-west-1", cloud_service="ec2"),
        ),
    ]
)
SETTINGS = AttributionSettings(
    environment="test",
    cluster="demo",
    cloud="aws",
    region="us-east-1",
    private_ranges=("10.0.0.0/8", "198.18.0.0/15"),
)


class World:
    """Implements every lookup protocol from the dicts above (plus optional external entries)."""

    def __init__(self, externals: dict[str, Endpoint] | None = None) -> None:
        self.externals = PrefixTable((externals or {}).items())

    def endpoint_at(self, ip: str, when: float) -> Endpoint | None:
        node = NODE_IPS.get(ip)
        return NODES[node] if node else PODS.get(ip)

    def node(self, name: str) -> Endpoint | None:
        return NODES.get(name)

    def service_at(self, ip: str, port: int, proto: str, when: float) -> str | None:
        if proto == "tcp" and ((ip == VIP and port == 80) or (ip in NODE_IPS and port == NODE_PORT)):
            return "shop/web"
        return None

    def service_of_backend(self, ip: str, port: int, proto: str, when: float) -> str | None:
        return "shop/web" if (ip, port, proto) == ("198.18.2.10", 8080, "tcp") else None

    def external(self, ip: str) -> Endpoint | None:
        return self.externals.lookup(ip)

    def cloud_range(self, ip: str) -> Endpoint | None:
        return CLOUD.lookup(ip)


def attributor(world: World | None = None, settings: AttributionSettings = SETTINGS) -> Attributor:
    w = world or World()
    return Attributor(Lookups(w, w, w), settings)


def record(
    node: str,
    orig: tuple[str, int, str, int],
    reply: tuple[str, int, str, int],
    orig_bytes: int = 1000,
    reply_bytes: int = 300,
    start: float = 1795687203.0,
    proto: int = 6,
) -> FlowRecord:
    """A record; orig and reply are (src, sport, dst, dport). Packets are bytes // 100 (0 stays 0)."""
    family = 6 if ":" in orig[0] else 4
    return FlowRecord(
        node, proto, family, orig[0], orig[2], orig[1], orig[3], reply[0], reply[2], reply[1], reply[3],
        orig_bytes, orig_bytes // 100, reply_bytes, reply_bytes // 100, start, start + 5,
    )  # fmt: skip
