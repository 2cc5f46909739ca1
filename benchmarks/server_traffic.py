"""The server benchmark's world: a static inventory and what its agents report, encoded in advance.

Cluster: 500 nodes in three zones, 20 pods each (10,000 pods, dual-stack), 500 Services with three
backends each (Service 0 is DNS over UDP), 30 inventory databases. Agents run on the first `nodes` nodes.

Each agent node keeps a population of long-lived connections and reports, every 10 s interval, the ones
that moved (85 %) plus fresh short flows (DNS lookups, new connections), so most flows repeat across the
intervals of one minute bucket and aggregation has work to do. The mix per node, by share of the
population: pod->pod in the same zone 30 %, across zones 12 %, inbound to a local pod from another node
15 %, via a ClusterIP (DNAT) 15 %, to cloud ranges (AWS S3 in region, AWS in another region, GCP, Azure)
8 % and the internet 5 % (both SNATed to the node), inventory databases 4 %, pod->pod over IPv6 6 %,
cloud over IPv6 5 %.

Addresses are data only: nothing here sends a packet anywhere. Public addresses are TEST-NET/documentation
ones; cloud ones are taken from the bundled vendor ranges so they attribute to a provider.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass

from kubenetmon.records import Batch, FlowRecord
from kubenetmon.transport import codec

NODES, PODS_PER_NODE, SERVICES, DATABASES = 500, 20, 500, 30
ZONES = ("use1-az1", "use1-az2", "use1-az4")
INTERVAL_SECONDS = 10
DNS_SERVICE_IP = "172.20.0.10"
_CLOUD_V4 = ("52.216.{}.{}", "3.5.{}.{}", "52.94.{}.{}", "35.190.{}.{}", "20.38.{}.{}")
_INTERNET_V4 = ("192.0.2.{}", "198.51.100.{}", "203.0.113.{}")
_MIX = (
    ("same_zone", 30),
    ("cross_zone", 12),
    ("inbound", 15),
    ("cluster_ip", 15),
    ("cloud", 8),
    ("internet", 5),
    ("database", 4),
    ("pod_v6", 6),
    ("cloud_v6", 5),
)


def node_name(n: int) -> str:
    return f"node-{n}"


def node_ip(n: int) -> str:
    return f"10.0.{n // 250}.{n % 250 + 1}"


def pod_ip(n: int, k: int) -> str:
    return f"10.1.{n // 10}.{(n % 10) * 25 + k + 1}"


def pod_ip6(n: int, k: int) -> str:
    return str(ipaddress.IPv6Address(f"fd00:db8:{n:x}::{k + 10:x}"))


def service_ip(s: int) -> str:
    return DNS_SERVICE_IP if s == 0 else f"172.20.{s // 250 + 1}.{s % 250 + 1}"


def backend(s: int, j: int) -> tuple[int, int]:
    """(node, pod) of backend `j` of Service `s`."""
    return (s * 37 + j * 101) % NODES, (s + j) % PODS_PER_NODE


def inventory_document() -> dict[str, object]:
    """The static inventory YAML document (see docs/static-inventory.yaml)."""
    nodes = [
        {"name": node_name(n), "zone": ZONES[n % 3], "instance_id": f"i-{n:08x}", "addresses": [node_ip(n)]}
        for n in range(NODES)
    ]
    pods = [
        {
            "namespace": f"ns-{(n * PODS_PER_NODE + k) % 40}",
            "name": f"app-{(n * PODS_PER_NODE + k) % 700}-{n}-{k}",
            "node": node_name(n),
            "ips": [pod_ip(n, k), pod_ip6(n, k)],
            "labels": {"app.kubernetes.io/name": f"app-{(n * PODS_PER_NODE + k) % 700}"},
            "workload": f"app-{(n * PODS_PER_NODE + k) % 700}",
            "workload_kind": "Deployment",
        }
        for n in range(NODES)
        for k in range(PODS_PER_NODE)
    ]
    services = [
        {
            "namespace": "kube-system" if s == 0 else f"ns-{s % 40}",
            "name": "kube-dns" if s == 0 else f"svc-{s}",
            "ips": [service_ip(s)],
            "ports": [{"port": 53, "protocol": "udp"}] if s == 0 else [{"port": 80, "target_port": 8080}],
            "backends": [pod_ip(*backend(s, j)) for j in range(3)],
        }
        for s in range(SERVICES)
    ]
    external = [
        {"cidr": f"10.250.{d}.0/24", "name": f"db-{d}", "zone": ZONES[d % 3], "cloud_service": "rds"}
        for d in range(DATABASES)
    ]
    return {"cluster": "bench", "cloud": "aws", "region": "us-east-1", "nodes": nodes, "pods": pods,
            "services": services, "external": external}  # fmt: skip


Connection = tuple[FlowRecord, bool]
"""What repeats from interval to interval: a flow's tuples (a FlowRecord without node, counters or times)
and whether it is a bulk transfer rather than request/response sized."""


def _flow(proto: int, family: int, source: str, target: str, sport: int, dport: int, server: str,
          reply_dst: str, server_port: int, heavy: bool) -> Connection:  # fmt: skip
    return FlowRecord("", proto, family, source, target, sport, dport, server, reply_dst, server_port, sport,
                      0, 0, 0, 0, 0.0, 0.0), heavy  # fmt: skip


def _connection(kind: str, n: int, rng: random.Random) -> Connection:
    k, sport = rng.randrange(PODS_PER_NODE), rng.randrange(32768, 61000)
    client = pod_ip(n, k)
    heavy = rng.random() < 0.1

    def plain(server: str, port: int, family: int = 4, source: str = client) -> Connection:
        return _flow(6, family, source, server, sport, port, server, source, port, heavy)

    def snat(remote: str, port: int, family: int = 4) -> Connection:
        source = pod_ip6(n, k) if family == 6 else client
        translated = f"fd00:db8:ffff::{n + 1:x}" if family == 6 else node_ip(n)
        return _flow(6, family, source, remote, sport, port, remote, translated, port, heavy)

    same_zone = rng.randrange(n % 3, NODES, 3)
    if kind == "same_zone":
        return plain(pod_ip(same_zone, rng.randrange(PODS_PER_NODE)), 8080)
    if kind == "cross_zone":
        other = rng.randrange((n + 1) % 3, NODES, 3)
        return plain(pod_ip(other, rng.randrange(PODS_PER_NODE)), 5432)
    if kind == "inbound":
        remote_client = pod_ip(rng.randrange(NODES), rng.randrange(PODS_PER_NODE))
        return plain(pod_ip(n, rng.randrange(PODS_PER_NODE)), 8080, source=remote_client)
    if kind == "cluster_ip":
        s = rng.randrange(1, SERVICES)
        target = pod_ip(*backend(s, rng.randrange(3)))
        return _flow(6, 4, client, service_ip(s), sport, 80, target, client, 8080, heavy)
    if kind == "cloud":
        return snat(rng.choice(_CLOUD_V4).format(rng.randrange(256), rng.randrange(1, 255)), 443)
    if kind == "internet":
        return snat(rng.choice(_INTERNET_V4).format(rng.randrange(1, 255)), 443)
    if kind == "database":
        return plain(f"10.250.{rng.randrange(DATABASES)}.5", 5432)
    if kind == "pod_v6":
        return plain(pod_ip6(same_zone, rng.randrange(PODS_PER_NODE)), 8080, 6, pod_ip6(n, k))
    return snat(
        str(ipaddress.IPv6Address(f"2600:1f18:{rng.randrange(0x4000):x}::{rng.randrange(1, 0xFFFF):x}")),
        443,
        6,
    )


def _dns_lookup(n: int, rng: random.Random) -> Connection:
    client, sport = pod_ip(n, rng.randrange(PODS_PER_NODE)), rng.randrange(32768, 61000)
    target = pod_ip(*backend(0, rng.randrange(3)))
    return _flow(17, 4, client, DNS_SERVICE_IP, sport, 53, target, client, 53, False)


def _record(node: str, flow: Connection, start: float, rng: random.Random) -> FlowRecord:
    template, heavy = flow
    scale = 10**7 if heavy else 10**4
    up, down = rng.randrange(60, scale), rng.randrange(60, scale * 4)
    counters = {"orig_bytes": up, "orig_packets": up // 1200 + 1, "reply_bytes": down,
                "reply_packets": down // 1200 + 1}  # fmt: skip
    return template._replace(node=node, start=start, end=start + INTERVAL_SECONDS, **counters)


@dataclass(frozen=True, slots=True)
class Traffic:
    """Every agent's encoded batches, and what the table must hold once they are stored."""

    batches: dict[str, list[bytes]]
    """Per node, its batches in sending order (seq 0, 1, ...), encoded as on the wire."""
    records: int
    total_bytes: int
    """Sum of both directions' bytes over all records: the table's sum(bytes) when everything is stored
    (no flow here is proxied, the one case that would store a record's bytes twice)."""
    total_packets: int


def node_records(
    n: int, intervals: int, per_batch: int, first_start: float, seed: int
) -> list[list[FlowRecord]]:
    """Node `n`'s records, one list per interval."""
    rng = random.Random(seed * 1_000_003 + n)
    kinds = [kind for kind, weight in _MIX for _ in range(weight)]
    population = [_connection(rng.choice(kinds), n, rng) for _ in range(per_batch)]
    node = node_name(n)
    result = []
    for interval in range(intervals):
        start = first_start + interval * INTERVAL_SECONDS
        moved = [flow for flow in population if rng.random() < 0.85]
        fresh_dns = (per_batch - len(moved)) // 2
        fresh = [_dns_lookup(n, rng) for _ in range(fresh_dns)]
        fresh += [_connection(rng.choice(kinds), n, rng) for _ in range(per_batch - len(moved) - fresh_dns)]
        result.append([_record(node, flow, start, rng) for flow in moved + fresh])
    return result


def recorded_traffic(
    nodes: int, intervals: int, per_batch: int, first_start: float, seed: int = 7
) -> Traffic:
    """Batches of `per_batch` records for `intervals` intervals from agents on nodes 0..nodes-1."""
    batches: dict[str, list[bytes]] = {}
    records = total_bytes = total_packets = 0
    for n in range(nodes):
        encoded = []
        for seq, flows in enumerate(node_records(n, intervals, per_batch, first_start, seed)):
            encoded.append(codec.encode_batch(Batch(node_name(n), "bench-epoch", seq, flows)))
            records += len(flows)
            total_bytes += sum(r.orig_bytes + r.reply_bytes for r in flows)
            total_packets += sum(r.orig_packets + r.reply_packets for r in flows)
        batches[node_name(n)] = encoded
    return Traffic(batches, records, total_bytes, total_packets)
