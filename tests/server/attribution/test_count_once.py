"""Property: over every node that sees a flow, count_once rows add up to each byte exactly once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kubenetmon.server.attribution.direction import counted_here
from tests.server.attribution.world import NODE_IPS, PODS, attributor, record

OUTSIDE = ["203.0.113.7", "198.51.100.9", "10.9.9.9"]
ENDPOINTS = [*PODS, *NODE_IPS, *OUTSIDE]


def observers(ip: str) -> set[str]:
    """The node whose conntrack sees traffic to or from `ip` (none for outside addresses)."""
    if ip in NODE_IPS:
        return {NODE_IPS[ip]}
    return {PODS[ip].node} if ip in PODS else set()


@given(
    client=st.sampled_from(ENDPOINTS),
    server=st.sampled_from(ENDPOINTS),
    orig_bytes=st.integers(0, 10**9),
    reply_bytes=st.integers(0, 10**9),
)
def test_count_once_rows_sum_to_the_flows_bytes_over_all_observation_points(
    client: str, server: str, orig_bytes: int, reply_bytes: int
) -> None:
    if client == server or (":" in client) != (":" in server):
        return
    nodes = observers(client) | observers(server)
    engine = attributor()
    rows = [
        row
        for node in sorted(nodes)
        for row in engine.attribute(
            record(node, (client, 40000, server, 443), (server, 443, client, 40000), orig_bytes, reply_bytes)
        ).rows
    ]
    expected = orig_bytes + reply_bytes if nodes else 0
    assert sum(row.bytes for row in rows if row.count_once) == expected


@given(st.booleans(), st.booleans(), st.booleans(), st.booleans())
def test_a_sender_on_the_node_is_always_counted_and_a_metered_sender_elsewhere_never(
    sender_here: bool, sender_elsewhere: bool, receiver_here: bool, receiver_elsewhere: bool
) -> None:
    if sender_here and sender_elsewhere:
        return
    counted = counted_here(sender_here, sender_elsewhere, receiver_here, receiver_elsewhere)
    if sender_here:
        assert counted
    elif sender_elsewhere:
        assert not counted
    else:
        assert counted == (receiver_here or not receiver_elsewhere)
