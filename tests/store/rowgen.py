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


def _row(
    bucket: int,
    direction: Direction,
    local: Endpoint,
    remote: Endpoint,
    ips: tuple[str, int, str, int],
    services: tuple[str, str],
    billing: BillingClass,
    observer: str,
    count_once: bool,
    size: tuple[int, int],
) -> AttributedRow:
    connection_class = {
        BillingClass.SAME_ZONE: ConnectionClass.INTRA_VPC,
        BillingClass.CROSS_ZONE: ConnectionClass.INTRA_VPC,
        BillingClass.CLOUD_SERVICE: ConnectionClass.INTRA_REGION,
        BillingClass.INTERNET: ConnectionClass.PUBLIC_INTERNET,
    }[billing]
    return AttributedRow(
        bucket,
        60,
        "test",
        "tcp",
        direction,
        local,
        remote,
        ips[0],
        ips[1],
        ips[2],
        ips[3],
        services[0],
        services[1],
        connection_class,
        billing,
        f"reason-{billing.value}",
        ("dnat",) if services[1] else (),
        observer,
        count_once,
        size[0],
        size[1],
    )


def connection_rows(rng: random.Random, world: World, bucket: int) -> list[AttributedRow]:
    """The rows of one random connection during one bucket, as every observing node reports them."""
    kind = rng.random()
    # Workloads whose port is a multiple of 3 open connections only to cloud services and the internet;
    # the others open to pods too, and pods accept from pods and the internet: the roles report has
    # several behaviours to tell apart.
    client = rng.choice([pod for pod in world.pods if pod.port % 3 or kind >= 0.7])
    sent, received = rng.randrange(1, 1 << 20), rng.randrange(1, 1 << 16)
    sent_p, received_p = sent // 1400 + 1, received // 1400 + 1
    eph = rng.randrange(32768, 61000)
    if kind < 0.7:
        server = rng.choice([pod for pod in world.pods if pod.port % 3 == 0 or pod.port % 5 == 1])
        if server is client or (":" in server.ip) != (":" in client.ip):
            return []
        same_zone = server.endpoint.zone == client.endpoint.zone
        billing = BillingClass.SAME_ZONE if same_zone else BillingClass.CROSS_ZONE
        c, s = client.endpoint, server.endpoint
        same_node = c.node == s.node
        rows = [
            _row(
                bucket,
                Direction.OUT,
                c,
                s,
                (client.ip, eph, server.ip, server.port),
                ("", server.service),
                billing,
                c.node,
                True,
                (sent, sent_p),
            ),
            _row(
                bucket,
                Direction.IN,
                c,
                s,
                (client.ip, eph, server.ip, server.port),
                ("", server.service),
                billing,
                c.node,
                True,
                (received, received_p),
            ),
        ]
        if not same_node:
            rows += [
                _row(
                    bucket,
                    Direction.IN,
                    s,
                    c,
                    (server.ip, server.port, client.ip, eph),
                    (server.service, ""),
                    billing,
                    s.node,
                    False,
                    (sent, sent_p),
                ),
                _row(
                    bucket,
                    Direction.OUT,
                    s,
                    c,
                    (server.ip, server.port, client.ip, eph),
                    (server.service, ""),
                    billing,
                    s.node,
                    False,
                    (received, received_p),
                ),
            ]
        return rows
    if ":" in client.ip:
        return []
    if kind < 0.85:
        remote, ip = rng.choice(world.clouds)
        billing, ports, services = BillingClass.CLOUD_SERVICE, (client.ip, eph, ip, 443), ("", "")
        sizes = ((sent, sent_p), (received, received_p))
    else:
        remote, ip = rng.choice(world.internet)
        # The internet opens connections to the pod (an ingress): local port is the listener.
        billing, ports, services = (
            BillingClass.INTERNET,
            (client.ip, client.port, ip, eph),
            (client.service, ""),
        )
        sizes = ((received, received_p), (sent, sent_p))
    local = client.endpoint
    return [
        _row(bucket, Direction.OUT, local, remote, ports, services, billing, local.node, True, sizes[0]),
        _row(bucket, Direction.IN, local, remote, ports, services, billing, local.node, True, sizes[1]),
    ]


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
