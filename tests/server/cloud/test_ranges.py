"""Longest-prefix match: agrees with a naive scan over every prefix, for IPv4 and IPv6."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubenetmon.server.cloud.ranges import PrefixTable, parse_prefix


def naive(prefixes: list[str], ip: str) -> str | None:
    address = ipaddress.ip_address(ip)
    matches = [ipaddress.ip_network(p) for p in prefixes if address in ipaddress.ip_network(p)]
    return str(max(matches, key=lambda n: n.prefixlen)) if matches else None


v4_prefixes = st.builds(
    lambda address, length: str(
        ipaddress.ip_network(f"{ipaddress.IPv4Address(address)}/{length}", strict=False)
    ),
    st.integers(0, 2**32 - 1) | st.sampled_from([0x0A000000, 0x0A0A0000, 0x0A0A0A00]),
    st.integers(0, 32) | st.sampled_from([8, 16, 24]),
)


@given(st.lists(v4_prefixes, unique=True, max_size=30), st.lists(st.integers(0, 2**32 - 1), max_size=20))
def test_lookup_matches_a_naive_longest_prefix_scan(prefixes: list[str], addresses: list[int]) -> None:
    table = PrefixTable((p, p) for p in prefixes)
    probes = [str(ipaddress.IPv4Address(a)) for a in addresses]
    probes += [str(ipaddress.ip_network(p).network_address) for p in prefixes]
    probes += [str(ipaddress.ip_network(p).broadcast_address) for p in prefixes]
    for ip in probes:
        assert table.lookup(ip) == naive(prefixes, ip), ip


def test_nested_prefixes_resume_the_outer_value_after_the_inner_one_ends() -> None:
    table = PrefixTable([("10.0.0.0/8", "outer"), ("10.1.0.0/16", "inner"), ("10.1.2.0/24", "innermost")])
    assert [
        table.lookup(ip) for ip in ("10.0.0.1", "10.1.0.1", "10.1.2.3", "10.1.3.0", "10.2.0.0", "11.0.0.0")
    ] == [
        "outer",
        "inner",
        "innermost",
        "inner",
        "outer",
        None,
    ]


def test_ipv6_and_ipv4_are_separate_spaces() -> None:
    table = PrefixTable([("2001:db8::/32", "v6"), ("0.0.0.0/0", "v4-default")])
    assert table.lookup("2001:db8::1") == "v6"
    assert table.lookup("2001:db9::1") is None
    assert table.lookup("192.0.2.1") == "v4-default"


@pytest.mark.parametrize("ip", ["", "not-an-ip", "1.2.3", "::g"])
def test_a_malformed_address_matches_nothing(ip: str) -> None:
    assert PrefixTable([("0.0.0.0/0", 1), ("::/0", 2)]).lookup(ip) is None


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("10.1.2.3/8", (4, 0x0A000000, 0x0AFFFFFF)),
        ("192.0.2.7", (4, 0xC0000207, 0xC0000207)),
        ("2001:db8::/127", (6, 0x20010DB8 << 96, (0x20010DB8 << 96) | 1)),
    ],
)
def test_parse_prefix_ignores_host_bits(text: str, parsed: tuple[int, int, int]) -> None:
    assert parse_prefix(text) == parsed


@pytest.mark.parametrize("text", ["10.0.0.0/33", "10.0.0.0/-1", "10.0.0/8", "10.0.0.0/ 8", "::/129", "x/1"])
def test_parse_prefix_rejects_malformed_prefixes(text: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        parse_prefix(text)
