"""The only addresses a lab may use, and the checks that refuse everything else.

Lab hosts (nodes, pods, the router, ClusterIP VIPs) live in the benchmarking range 198.18.0.0/15 and in
fd00:db8::/32. External endpoints stand for public or cloud-service hosts and therefore use documentation
addresses (TEST-NET-1/2/3 and 2001:db8::/32), which no real network routes. Nothing else is ever assigned,
so a lab packet can only be addressed to another lab host.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Family = Literal[4, 6]

LAB_V4 = ipaddress.IPv4Network("198.18.0.0/15")
LAB_V6 = ipaddress.IPv6Network("fd00:db8::/32")
DOCUMENTATION_V4 = (
    ipaddress.IPv4Network("192.0.2.0/24"),
    ipaddress.IPv4Network("198.51.100.0/24"),
    ipaddress.IPv4Network("203.0.113.0/24"),
)
DOCUMENTATION_V6 = (ipaddress.IPv6Network("2001:db8::/32"),)

# The underlay every node and the router share, and the ranges ClusterIP VIPs come from.
UNDERLAY_V4 = ipaddress.IPv4Network("198.18.0.0/24")
UNDERLAY_V6 = ipaddress.IPv6Network("fd00:db8::/64")
ROUTER_V4 = ipaddress.IPv4Address("198.18.0.1")
ROUTER_V6 = ipaddress.IPv6Address("fd00:db8::1")
SERVICE_V4 = ipaddress.IPv4Network("198.19.0.0/16")
SERVICE_V6 = ipaddress.IPv6Network("fd00:db8:ffff::/64")

_LAB_TEXT = "198.18.0.0/15 or fd00:db8::/32"
_DOCUMENTATION_TEXT = "192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 or 2001:db8::/32"


def _parse_address(value: str, what: str) -> IPAddress:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{what}: {value!r} is not an IP address") from None


def _parse_network(value: str, what: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(value)
    except ValueError:
        raise ValueError(f"{what}: {value!r} is not a network in CIDR notation (host bits zero)") from None


def is_lab(address: IPAddress | IPNetwork) -> bool:
    """True when the address (or the whole network) is inside the lab host ranges."""
    if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv4Network):
        return _within(address, (LAB_V4,))
    return _within(address, (LAB_V6,))


def is_documentation(address: IPAddress | IPNetwork) -> bool:
    """True when the address (or the whole network) is inside a documentation range."""
    if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv4Network):
        return _within(address, DOCUMENTATION_V4)
    return _within(address, DOCUMENTATION_V6)


def _within(address: IPAddress | IPNetwork, networks: tuple[IPNetwork, ...]) -> bool:
    if isinstance(address, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return any(
            address.version == net.version and address.subnet_of(net)  # type: ignore[arg-type]
            for net in networks
        )
    return any(address in net for net in networks)


def lab_address(value: str, family: Family, what: str) -> str:
    """`value` normalised, or ValueError unless it is an IPv`family` address in the lab host ranges."""
    return _require_lab(_parse_address(value, what), family, what, value)


def external_address(value: str, family: Family, what: str) -> str:
    """`value` normalised, or ValueError unless it is an IPv`family` documentation address."""
    address = _parse_address(value, what)
    _check_family(address, family, what, value)
    if is_documentation(address):
        return str(address)
    raise ValueError(
        f"{what}: {value} is not a documentation address ({_DOCUMENTATION_TEXT}); "
        "external endpoints stand for public hosts and must never be real ones"
    )


def lab_network(value: str, family: Family, what: str) -> str:
    """`value` normalised, or ValueError unless it is an IPv`family` network inside the lab host ranges."""
    return _require_lab(_parse_network(value, what), family, what, value)


def _require_lab(parsed: IPAddress | IPNetwork, family: Family, what: str, value: str) -> str:
    _check_family(parsed, family, what, value)
    if not is_lab(parsed):
        raise ValueError(f"{what}: {value} is outside the lab ranges {_LAB_TEXT}; a lab never uses it")
    return str(parsed)


def _check_family(address: IPAddress | IPNetwork, family: Family, what: str, value: str) -> None:
    if address.version != family:
        raise ValueError(f"{what}: {value} is IPv{address.version}, expected IPv{family}")


def require_within(value: str, network: IPNetwork, what: str) -> None:
    """ValueError unless the address or network `value` lies inside `network`."""
    parsed: IPAddress | IPNetwork = (
        ipaddress.ip_network(value) if "/" in value else ipaddress.ip_address(value)
    )
    if not _within(parsed, (network,)):
        raise ValueError(f"{what}: {value} is outside {network}")
