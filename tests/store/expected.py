"""Independent Python reference computations over generated rows, for comparing with the store's answers."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import fields
from typing import Any

from kubenetmon.records import AttributedRow, Direction, Endpoint

ENDPOINT_FIELDS = tuple(f.name for f in fields(Endpoint))


def value_key(row: AttributedRow) -> tuple[Any, ...]:
    """`row[:-2]` compared by value (Endpoints compare by identity in Python, by value in the table)."""
    return tuple(
        tuple(getattr(v, f) for f in ENDPOINT_FIELDS) if isinstance(v, Endpoint) else v for v in row[:-2]
    )


def name(endpoint: Endpoint, ip: str) -> str:
    """How reports name one side: workload, pod, node, cloud service, else the IP."""
    if endpoint.workload:
        return f"{endpoint.namespace}/{endpoint.workload}"
    if endpoint.pod:
        return f"{endpoint.namespace}/{endpoint.pod}"
    if endpoint.node:
        return f"node/{endpoint.node}"
    if endpoint.cloud_service:
        return f"{endpoint.cloud}:{endpoint.cloud_service}"
    return ip


def sender_receiver(row: AttributedRow) -> tuple[str, str, str, str]:
    """(sender, sender zone, receiver, receiver zone) of a row's bytes."""
    local = (name(row.local, row.local_ip), row.local.zone)
    remote = (name(row.remote, row.remote_ip), row.remote.zone)
    first, second = (local, remote) if row.direction is Direction.OUT else (remote, local)
    return first[0], first[1], second[0], second[1]


def sums(rows: Iterable[AttributedRow], key: Any) -> dict[Any, list[int]]:
    """[bytes, packets] summed per key(row)."""
    totals: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        total = totals[key(row)]
        total[0] += row.bytes
        total[1] += row.packets
    return dict(totals)


def opener(row: AttributedRow) -> str:
    """Which side opened the connection, by the evidence order the roles report documents."""
    if "local-initiated" in row.flags:
        return "local"
    if "remote-initiated" in row.flags:
        return "remote"
    if row.remote_service:
        return "local"
    if row.local_service:
        return "remote"
    if row.remote_port != row.local_port:
        return "local" if row.remote_port < row.local_port else "remote"
    return ""


def roles(rows: Iterable[AttributedRow]) -> dict[str, tuple[int, int, int, int]]:
    """who -> (distinct peers opened to, distinct peers accepted from, bytes as opener, bytes as acceptor)."""
    opened: dict[str, set[str]] = defaultdict(set)
    accepted: dict[str, set[str]] = defaultdict(set)
    moved: Counter[tuple[str, str]] = Counter()
    for row in rows:
        side = opener(row)
        if not side:
            continue
        sides = [(row.local, row.local_ip), (row.remote, row.remote_ip)]
        (o_ep, o_ip), (a_ep, a_ip) = sides if side == "local" else sides[::-1]
        o, a = name(o_ep, o_ip), name(a_ep, a_ip)
        if o_ep.pod:
            opened[o].add(a)
            moved[o, "opens"] += row.bytes if row.count_once else 0
        if a_ep.pod:
            accepted[a].add(o)
            moved[a, "accepts"] += row.bytes if row.count_once else 0
    who = set(opened) | set(accepted)
    return {w: (len(opened[w]), len(accepted[w]), moved[w, "opens"], moved[w, "accepts"]) for w in who}
