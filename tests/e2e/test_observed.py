"""Reading the store: local/remote rows become sender -> receiver flows, addresses in one spelling."""

from __future__ import annotations

from typing import Any

from kubenetmon.demo.observed import Facts, FlowKey, normal_ip, stored_bytes
from kubenetmon.store.dsn import parse_dsn
from kubenetmon.store.sink import QueryResult

LOCAL = ("shop", "frontend-1", "frontend", "Deployment", "eu-west-1a", "eu-west-1", "aws", "")
REMOTE = ("", "", "", "", "", "us-east-1", "aws", "s3")


class OneAnswer:
    """A store that answers every query with the same rows."""

    settings = parse_dsn("chdb:///nowhere")

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        return QueryResult((), (), self.rows)


def stored(direction: str) -> tuple[Any, ...]:
    head = (
        "node-a1",
        direction,
        True,
        "udp",
        "cross-region",
        "::ffff:198.18.1.10",
        5000,
        "2001:db8:3::10",
        443,
    )
    return (*head, *LOCAL, *REMOTE, 1234, 5)


def test_an_out_row_is_sent_by_its_local_side() -> None:
    (entry,) = stored_bytes(OneAnswer([stored("out")]))
    assert entry.flow == FlowKey(17, "198.18.1.10", 5000, "2001:db8:3::10", 443)
    assert (entry.sender, entry.receiver) == (Facts(*LOCAL), Facts(*REMOTE))
    assert (entry.bytes, entry.packets, entry.count_once) == (1234, 5, True)


def test_an_in_row_is_sent_by_its_remote_side() -> None:
    (entry,) = stored_bytes(OneAnswer([stored("in")]))
    assert entry.flow == FlowKey(17, "2001:db8:3::10", 443, "198.18.1.10", 5000)
    assert (entry.sender, entry.receiver) == (Facts(*REMOTE), Facts(*LOCAL))


def test_ipv4_mapped_addresses_read_as_ipv4_and_ipv6_is_compressed() -> None:
    assert normal_ip("::ffff:198.18.1.10") == "198.18.1.10"
    assert normal_ip("fd00:db8:0:0::a") == "fd00:db8::a"
