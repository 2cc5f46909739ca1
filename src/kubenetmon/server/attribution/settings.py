"""What attribution needs to know about the server's own place in the world, validated once."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from kubenetmon.errors import SettingsError

RFC1918_AND_ULA: tuple[str, ...] = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
"""The default private ranges: RFC 1918 and IPv6 unique local addresses. CGNAT space (100.64.0.0/10),
non-RFC 1918 VPC ranges and 'privately used public' ranges must be configured; they are not guessed."""

_DAY = 86400


@dataclass(frozen=True, slots=True)
class PeeredRange:
    """A private range reached over peering, VPN or interconnect, and where it is."""

    cidr: str
    region: str
    """Its region; traffic to it is cross-region when this differs from the local region."""
    cloud: str = ""
    """Its cloud; empty means the local cloud."""
    zone: str = ""
    """Its zone, when the whole range sits in one (a subnet); empty when unknown."""


@dataclass(frozen=True, slots=True)
class AttributionSettings:
    """The server settings attribution depends on, and nothing else."""

    environment: str = ""
    """Copied into every row (the `environment` column), e.g. 'production'."""
    cluster: str = ""
    """This cluster's name: the local cluster of every row and the remote cluster of in-cluster peers."""
    cloud: str = ""
    """This cluster's cloud ('aws', 'gcp', 'azure'), for endpoints whose node does not say."""
    region: str = ""
    """This cluster's region, for endpoints whose node does not say; needed to judge cloud ranges."""
    bucket_seconds: int = 60
    """Rows are summed per bucket of this many seconds; 60 matches the seed schema's intervalSeconds."""
    private_ranges: tuple[str, ...] = RFC1918_AND_ULA
    """Addresses in these ranges are inside the VPC (cluster pods and nodes are, wherever they are)."""
    peered_ranges: tuple[PeeredRange, ...] = ()
    """Private ranges elsewhere; they take precedence over `private_ranges` for the addresses they cover."""

    def validated(self) -> AttributionSettings:
        """This object if every field makes sense; otherwise SettingsError listing every problem."""
        problems: list[str] = []
        if not 0 < self.bucket_seconds <= _DAY or _DAY % self.bucket_seconds:
            problems.append(f"bucket_seconds={self.bucket_seconds} must divide a day (86400) evenly")
        for cidr in self.private_ranges:
            _check_cidr(cidr, "private_ranges", problems)
        for peered in self.peered_ranges:
            _check_cidr(peered.cidr, "peered_ranges", problems)
            if not peered.region:
                problems.append(f"peered_ranges: {peered.cidr} needs a region")
        if problems:
            raise SettingsError("invalid attribution settings: " + "; ".join(problems))
        return self


def _check_cidr(cidr: str, name: str, problems: list[str]) -> None:
    try:
        ipaddress.ip_network(cidr)
    except ValueError as exc:
        problems.append(f"{name}: {cidr!r} is not a CIDR network ({exc})")
