"""The narrow read-only questions attribution asks of the world.

The Kubernetes inventory, the static inventory file and the cloud range table each answer some of
them; attribution only ever sees these protocols, so its tests pass small dict-backed fakes and its
benchmark needs no API server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from kubenetmon.records import Endpoint


class EndpointLookup(Protocol):
    """Pods and nodes (and static-inventory hosts) by address, as they were at a given time."""

    def endpoint_at(self, ip: str, when: float) -> Endpoint | None:
        """The pod or node that held `ip` at epoch second `when`, or None.

        A running pod wins over a completed one that kept the same IP; a deleted pod stays
        resolvable for the inventory's deletion grace period, so late conntrack entries still
        find their owner.
        """
        ...

    def node(self, name: str) -> Endpoint | None:
        """The node called `name` (an agent's observation point), or None if unknown."""
        ...


class ServiceLookup(Protocol):
    """Services by the addresses clients use and by the backends they reach."""

    def service_at(self, ip: str, port: int, proto: str, when: float) -> str | None:
        """'namespace/name' of the Service whose ClusterIP, LoadBalancer IP or NodePort
        (on a node address) is `ip`:`port`, or None."""
        ...

    def service_of_backend(self, ip: str, port: int, proto: str, when: float) -> str | None:
        """'namespace/name' of a Service that lists `ip`:`port` as a ready endpoint in its
        EndpointSlices, or None. Used to name the Service on the backend's node, where conntrack
        only shows the already-translated tuple."""
        ...


class ExternalLookup(Protocol):
    """Addresses outside the cluster: static inventory entries and cloud provider ranges."""

    def external(self, ip: str) -> Endpoint | None:
        """The most specific static-inventory entry (VM, database, subnet, NAT gateway) for `ip`."""
        ...

    def cloud_range(self, ip: str) -> Endpoint | None:
        """The longest-prefix match of `ip` in the loaded cloud ranges (cloud, region, service)."""
        ...


class ExternalEntries(Protocol):
    """The half of ExternalLookup a static inventory answers."""

    def external(self, ip: str) -> Endpoint | None:
        """The most specific static-inventory entry for `ip`, or None."""
        ...


class CloudRangeSource(Protocol):
    """The half of ExternalLookup a cloud range table answers."""

    def cloud_range(self, ip: str) -> Endpoint | None:
        """The longest-prefix match of `ip` in the loaded cloud ranges, or None."""
        ...


class Nothing:
    """Knows nothing: every lookup answers None. For a server without a static inventory or cloud
    ranges, and for tests that exercise attribution with no inventory at all."""

    def endpoint_at(self, ip: str, when: float) -> Endpoint | None:
        """None."""
        return None

    def node(self, name: str) -> Endpoint | None:
        """None."""
        return None

    def service_at(self, ip: str, port: int, proto: str, when: float) -> str | None:
        """None."""
        return None

    def service_of_backend(self, ip: str, port: int, proto: str, when: float) -> str | None:
        """None."""
        return None

    def external(self, ip: str) -> Endpoint | None:
        """None."""
        return None

    def cloud_range(self, ip: str) -> Endpoint | None:
        """None."""
        return None


class Inventory(EndpointLookup, ServiceLookup, Protocol):
    """A source that answers both endpoint and Service questions (the Kubernetes index, a static file)."""


class FirstAnswer:
    """Several inventories asked in order; the first that knows answers. Kubernetes comes first, so a
    static file only fills in what the cluster does not know (VMs, databases, other clusters' nodes)."""

    __slots__ = ("_sources",)

    def __init__(self, sources: Sequence[Inventory]) -> None:
        self._sources = tuple(sources)

    def endpoint_at(self, ip: str, when: float) -> Endpoint | None:
        """The first source's answer."""
        for source in self._sources:
            found = source.endpoint_at(ip, when)
            if found is not None:
                return found
        return None

    def node(self, name: str) -> Endpoint | None:
        """The first source's answer."""
        for source in self._sources:
            found = source.node(name)
            if found is not None:
                return found
        return None

    def service_at(self, ip: str, port: int, proto: str, when: float) -> str | None:
        """The first source's answer."""
        for source in self._sources:
            found = source.service_at(ip, port, proto, when)
            if found is not None:
                return found
        return None

    def service_of_backend(self, ip: str, port: int, proto: str, when: float) -> str | None:
        """The first source's answer."""
        for source in self._sources:
            found = source.service_of_backend(ip, port, proto, when)
            if found is not None:
                return found
        return None


class ExternalSources:
    """An ExternalLookup made of a static inventory's entries and a cloud range table."""

    __slots__ = ("_entries", "_ranges")

    def __init__(self, entries: ExternalEntries, ranges: CloudRangeSource) -> None:
        self._entries = entries
        self._ranges = ranges

    def external(self, ip: str) -> Endpoint | None:
        """The static inventory's answer."""
        return self._entries.external(ip)

    def cloud_range(self, ip: str) -> Endpoint | None:
        """The cloud range table's answer."""
        return self._ranges.cloud_range(ip)


@dataclass(frozen=True, slots=True)
class Lookups:
    """Everything attribution may ask of the world, in one bundle."""

    endpoints: EndpointLookup
    services: ServiceLookup
    external: ExternalLookup
