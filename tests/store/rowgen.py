"""Deterministic synthetic AttributedRows shaped like a small multi-zone cluster (tests and benchmarks).

Each generated connection is observed the way agents observe it: a pod-to-pod connection across nodes
appears at both nodes (out + in rows at each), with countOnce set only on the initiator's node; same-node
pairs and traffic to cloud services or the internet appear once, with countOnce set.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from kubenetmon.records import (
    AttributedRow,
    BillingClass,
    ConnectionClass,
    Direction,
    Endpoint,
    EndpointKind,
)

ZONES = ("zone-a", "zone-b", "zone-c")
REGION = "region-1"


@dataclass(frozen=True, slots=True)
class Pod:
    endpoint: Endpoint
    ip: str
    service: str
    port: int


@dataclass(frozen=True, slots=True)
class World:
    pods: tuple[Pod, ...]
    clouds: tuple[tuple[Endpoint, str], ...]
    internet: tuple[tuple[Endpoint, str], ...]


def make_world(rng: random.Random, workloads: int = 12, replicas: int = 3, nodes_per_zone: int = 2) -> World:
    """Pods of `workloads` Deployments spread over zones and nodes; a few cloud and internet peers."""
    pods = []
    for w in range(workloads):
        for r in range(replicas):
            zone = ZONES[(w + r) % len(ZONES)]
            node = f"node-{zone[-1]}{rng.randrange(nodes_per_zone)}"
            ip = f"198.18.{w}.{r + 10}" if w % 4 else f"fd00:db8::{w:x}:{r + 10:x}"
            endpoint = Endpoint(
                EndpointKind.POD,
                cloud="aws",
                region=REGION,
                cluster="c1",
                zone=zone,
                node=node,
                instance_id=f"i-{node}",
                namespace=f"ns{w % 3}",
                pod=f"app{w}-{r}",
                app=f"app{w}",
                workload=f"app{w}",
                workload_kind="Deployment",
            )
            pods.append(Pod(endpoint, ip, f"ns{w % 3}/app{w}" if w % 2 else "", 8000 + w))
    clouds = tuple(
        (Endpoint(EndpointKind.CLOUD, cloud="aws", region=REGION, cloud_service=svc), f"192.0.2.{i + 1}")
        for i, svc in enumerate(("s3", "ec2", "dynamodb"))
    )
    internet = tuple((Endpoint(EndpointKind.INTERNET), f"203.0.113.{i + 1}") for i in range(4))
    return World(tuple(pods), clouds, internet)


_CONNECTION_CLASS = {
    BillingClass.SAME_ZONE: ConnectionClass.INTRA_VPC,
    BillingClass.CROSS_ZONE: ConnectionClass.INTRA_VPC,
    BillingClass.CLOUD_SERVICE: ConnectionClass.INTRA_REGION,
    BillingClass.INTERNET: ConnectionClass.PUBLIC_INTERNET,
}


@dataclass(frozen=True, slots=True)
class Sighting:
    """One node's view of a connection: its local and remote side, as conntrack on that node shows it."""

    local: Endpoint
    remote: Endpoint
    addresses: tuple[str, int, str, int]
    """local IP, local port, remote IP, remote port."""
    services: tuple[str, str]
    """local Service (reached through), remote Service (addressed)."""
    count_once: bool


def _rows(
    bucket: int, seen: Sighting, billing: BillingClass, out: tuple[int, int], back: tuple[int, int]
) -> list[AttributedRow]:
    """The out and in rows one node reports: `out` (bytes, packets) local->remote, `back` the reverse."""
    local_ip, local_port, remote_ip, remote_port = seen.addresses
    flags = ("dnat",) if seen.services[1] else ()
    return [
        AttributedRow(
            bucket, 60, "test", "tcp", direction, seen.local, seen.remote, local_ip, local_port, remote_ip,
            remote_port, seen.services[0], seen.services[1], _CONNECTION_CLASS[billing], billing,
            f"reason-{billing.value}", flags, seen.local.node, seen.count_once, *size,
        )
        for direction, size in ((Direction.OUT, out), (Direction.IN, back))
    ]  # fmt: skip


def connection_rows(rng: random.Random, world: World, bucket: int) -> list[AttributedRow]:
    """The rows of one random connection during one bucket, as every observing node reports them."""
    kind = rng.random()
    # Workloads whose port is a multiple of 3 open connections only to cloud services and the internet;
    # the others open to pods too, and pods accept from pods and the internet: the roles report has
    # several behaviours to tell apart.
    client = rng.choice([pod for pod in world.pods if pod.port % 3 or kind >= 0.7])
    sent, received = rng.randrange(1, 1 << 20), rng.randrange(1, 1 << 16)
    request, response = (sent, sent // 1400 + 1), (received, received // 1400 + 1)
    eph = rng.randrange(32768, 61000)
    if kind < 0.7:
        server = rng.choice([pod for pod in world.pods if pod.port % 3 == 0 or pod.port % 5 == 1])
        if server is client or (":" in server.ip) != (":" in client.ip):
            return []
        c, s = client.endpoint, server.endpoint
        billing = BillingClass.SAME_ZONE if s.zone == c.zone else BillingClass.CROSS_ZONE
        at_client = Sighting(c, s, (client.ip, eph, server.ip, server.port), ("", server.service), True)
        rows = _rows(bucket, at_client, billing, request, response)
        if c.node != s.node:  # the server's node sees it too; one conntrack entry when both share a node
            at_server = Sighting(s, c, (server.ip, server.port, client.ip, eph), (server.service, ""), False)
            rows += _rows(bucket, at_server, billing, response, request)
        return rows
    if ":" in client.ip:
        return []
    if kind < 0.85:
        remote, ip = rng.choice(world.clouds)
        seen = Sighting(client.endpoint, remote, (client.ip, eph, ip, 443), ("", ""), True)
        return _rows(bucket, seen, BillingClass.CLOUD_SERVICE, request, response)
    # The internet opens connections to the pod (an ingress): the local port is the listener.
    remote, ip = rng.choice(world.internet)
    seen = Sighting(client.endpoint, remote, (client.ip, client.port, ip, eph), (client.service, ""), True)
    return _rows(bucket, seen, BillingClass.INTERNET, response, request)


def generate(seed: int, count: int, start: int, buckets: int = 10, polls: int = 1) -> list[AttributedRow]:
    """`count` rows of random connections over `buckets` one-minute buckets from `start`.

    Each connection is reported by `polls` agent polls in its bucket (same key, split counters), the way
    a 5 s agent interval reports a busy connection 12 times per minute.
    """
    rng = random.Random(seed)
    world = make_world(rng)
    rows: list[AttributedRow] = []
    while len(rows) < count:
        connection = connection_rows(rng, world, start + 60 * rng.randrange(buckets))
        for poll in range(polls):
            rows += [row._replace(bytes=row.bytes + poll, packets=row.packets + poll) for row in connection]
    return rows[:count]
