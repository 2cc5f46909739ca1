"""What a flow's bytes cost: a billing class and the one reason that decided it. Pure.

`classify` looks at the local endpoint, the remote endpoint and the `Scope` address resolution found
the remote in, and returns a `BillingReason`. Every reason maps to exactly one `BillingClass` and one
legacy `ConnectionClass` (`CLASSES`), so the stored reason always explains both columns.

Decision order (first match wins):

1. both endpoints on the observing node                                -> same-node
2. remote scope HOST_LOCAL (loopback, link-local such as 169.254.169.254) -> host-local
3. remote scope SPECIAL (multicast, unspecified, broadcast)             -> special-address
4. remote scope UNKNOWN                                                 -> remote-unknown
5. remote scope SERVICE (a Service address whose backend was not seen)  -> service-backend-unknown
6. remote scope PUBLIC (no private range, no cloud range)               -> public-no-range-match
7. remote scope CLOUD: another cloud -> cloud-range-other-cloud; region 'global' -> cloud-range-global;
   local cloud or region unknown -> local-placement-unknown; same region -> cloud-range-same-region;
   else cloud-range-other-region
8. remote scope PRIVATE (a configured private range, nothing more known) -> private-range-no-zone
9. remote scope CLUSTER, INVENTORY or PEERED, by placement: different clouds -> other-cloud; different
   regions -> regions-differ (peered-range-other-region for PEERED); both zones known -> zones-equal or
   zones-differ; otherwise zone-unknown.

Unknown stays unknown: a missing zone or region gives an UNKNOWN billing class with a reason that says
which piece was missing, never a guess. One judgement call is documented here: a cloud range of the
local cloud whose region is 'global' (AWS GLOBAL, Azure global tags, goog.json) is billed like a cloud
service in the local region, since anycast edges answer from the nearest location; its reason keeps it
separable.
"""

from __future__ import annotations

import enum

from kubenetmon.records import BillingClass, ConnectionClass, Endpoint


class Scope(enum.IntEnum):
    """Where address resolution found an address (an IntEnum: hashed in C on the hot path)."""

    CLUSTER = 0
    """A pod or node of this cluster (from the Kubernetes or static inventory)."""
    INVENTORY = 1
    """A static-inventory external entry (VM, database, subnet, NAT gateway)."""
    PEERED = 2
    """A configured peered range (known region, maybe zone)."""
    PRIVATE = 3
    """A configured private range, nothing more."""
    HOST_LOCAL = 4
    """Loopback or link-local: never leaves the host or its link."""
    SPECIAL = 5
    """Multicast, unspecified or broadcast."""
    CLOUD = 6
    """A published cloud provider range."""
    PUBLIC = 7
    """Any other address."""
    SERVICE = 8
    """A Service address whose backend is not visible."""
    UNKNOWN = 9


class BillingReason(enum.StrEnum):
    """The closed set of reasons stored in `billing_reason`; see the module docstring for the order."""

    SAME_NODE = "same-node"
    HOST_LOCAL = "host-local"
    SPECIAL_ADDRESS = "special-address"
    REMOTE_UNKNOWN = "remote-unknown"
    SERVICE_BACKEND_UNKNOWN = "service-backend-unknown"
    PUBLIC_NO_RANGE_MATCH = "public-no-range-match"
    CLOUD_RANGE_OTHER_CLOUD = "cloud-range-other-cloud"
    CLOUD_RANGE_GLOBAL = "cloud-range-global"
    CLOUD_RANGE_SAME_REGION = "cloud-range-same-region"
    CLOUD_RANGE_OTHER_REGION = "cloud-range-other-region"
    LOCAL_PLACEMENT_UNKNOWN = "local-placement-unknown"
    PRIVATE_RANGE_NO_ZONE = "private-range-no-zone"
    OTHER_CLOUD = "other-cloud"
    REGIONS_DIFFER = "regions-differ"
    PEERED_RANGE_OTHER_REGION = "peered-range-other-region"
    ZONES_EQUAL = "zones-equal"
    ZONES_DIFFER = "zones-differ"
    ZONE_UNKNOWN = "zone-unknown"


CLASSES: dict[BillingReason, tuple[ConnectionClass, BillingClass]] = {
    BillingReason.SAME_NODE: (ConnectionClass.INTRA_VPC, BillingClass.SAME_ZONE),
    BillingReason.HOST_LOCAL: (ConnectionClass.INTRA_VPC, BillingClass.SAME_ZONE),
    BillingReason.SPECIAL_ADDRESS: (ConnectionClass.UNKNOWN, BillingClass.UNKNOWN),
    BillingReason.REMOTE_UNKNOWN: (ConnectionClass.UNKNOWN, BillingClass.UNKNOWN),
    BillingReason.SERVICE_BACKEND_UNKNOWN: (ConnectionClass.INTRA_VPC, BillingClass.UNKNOWN),
    BillingReason.PUBLIC_NO_RANGE_MATCH: (ConnectionClass.PUBLIC_INTERNET, BillingClass.INTERNET),
    BillingReason.CLOUD_RANGE_OTHER_CLOUD: (ConnectionClass.PUBLIC_INTERNET, BillingClass.INTERNET),
    BillingReason.CLOUD_RANGE_GLOBAL: (ConnectionClass.INTRA_REGION, BillingClass.CLOUD_SERVICE),
    BillingReason.CLOUD_RANGE_SAME_REGION: (ConnectionClass.INTRA_REGION, BillingClass.CLOUD_SERVICE),
    BillingReason.CLOUD_RANGE_OTHER_REGION: (ConnectionClass.INTER_REGION, BillingClass.CROSS_REGION),
    BillingReason.LOCAL_PLACEMENT_UNKNOWN: (ConnectionClass.UNKNOWN, BillingClass.UNKNOWN),
    BillingReason.PRIVATE_RANGE_NO_ZONE: (ConnectionClass.INTRA_VPC, BillingClass.UNKNOWN),
    BillingReason.OTHER_CLOUD: (ConnectionClass.PUBLIC_INTERNET, BillingClass.INTERNET),
    BillingReason.REGIONS_DIFFER: (ConnectionClass.INTER_REGION, BillingClass.CROSS_REGION),
    BillingReason.PEERED_RANGE_OTHER_REGION: (ConnectionClass.INTER_REGION, BillingClass.CROSS_REGION),
    BillingReason.ZONES_EQUAL: (ConnectionClass.INTRA_VPC, BillingClass.SAME_ZONE),
    BillingReason.ZONES_DIFFER: (ConnectionClass.INTRA_VPC, BillingClass.CROSS_ZONE),
    BillingReason.ZONE_UNKNOWN: (ConnectionClass.INTRA_VPC, BillingClass.UNKNOWN),
}

_FIXED: dict[Scope, BillingReason] = {
    Scope.HOST_LOCAL: BillingReason.HOST_LOCAL,
    Scope.SPECIAL: BillingReason.SPECIAL_ADDRESS,
    Scope.UNKNOWN: BillingReason.REMOTE_UNKNOWN,
    Scope.SERVICE: BillingReason.SERVICE_BACKEND_UNKNOWN,
    Scope.PUBLIC: BillingReason.PUBLIC_NO_RANGE_MATCH,
    Scope.PRIVATE: BillingReason.PRIVATE_RANGE_NO_ZONE,
}
_GLOBAL = "global"

# Python 3.11 reads Enum.MEMBER through a descriptor (about 150 ns a read, measured); classify runs once
# per row, so the members it returns and compares are module aliases.
_CLOUD_RANGE_GLOBAL = BillingReason.CLOUD_RANGE_GLOBAL
_CLOUD_RANGE_OTHER_CLOUD = BillingReason.CLOUD_RANGE_OTHER_CLOUD
_CLOUD_RANGE_OTHER_REGION = BillingReason.CLOUD_RANGE_OTHER_REGION
_CLOUD_RANGE_SAME_REGION = BillingReason.CLOUD_RANGE_SAME_REGION
_LOCAL_PLACEMENT_UNKNOWN = BillingReason.LOCAL_PLACEMENT_UNKNOWN
_OTHER_CLOUD = BillingReason.OTHER_CLOUD
_PEERED_RANGE_OTHER_REGION = BillingReason.PEERED_RANGE_OTHER_REGION
_REGIONS_DIFFER = BillingReason.REGIONS_DIFFER
_SAME_NODE = BillingReason.SAME_NODE
_ZONES_DIFFER = BillingReason.ZONES_DIFFER
_ZONES_EQUAL = BillingReason.ZONES_EQUAL
_ZONE_UNKNOWN = BillingReason.ZONE_UNKNOWN
_SCOPE_CLUSTER, _SCOPE_CLOUD, _SCOPE_PEERED = Scope.CLUSTER, Scope.CLOUD, Scope.PEERED


def classify(local: Endpoint, remote: Endpoint, scope: Scope, same_node: bool) -> BillingReason:
    """The reason that decides the billing class of bytes between `local` and `remote`.

    `local` must already carry the server's default cloud and region where its own were empty;
    `same_node` is true when both endpoints sit on the observing node.
    """
    if same_node:
        return _SAME_NODE
    if scope is _SCOPE_CLUSTER:
        return _placement(local, remote, scope)
    fixed = _FIXED.get(scope)
    if fixed is not None:
        return fixed
    if scope is _SCOPE_CLOUD:
        return _cloud_range(local, remote)
    return _placement(local, remote, scope)


def _cloud_range(local: Endpoint, remote: Endpoint) -> BillingReason:
    if not local.cloud:
        return _LOCAL_PLACEMENT_UNKNOWN
    if remote.cloud != local.cloud:
        return _CLOUD_RANGE_OTHER_CLOUD
    if remote.region == _GLOBAL:
        return _CLOUD_RANGE_GLOBAL
    if not local.region:
        return _LOCAL_PLACEMENT_UNKNOWN
    if remote.region == local.region:
        return _CLOUD_RANGE_SAME_REGION
    return _CLOUD_RANGE_OTHER_REGION


def _placement(local: Endpoint, remote: Endpoint, scope: Scope) -> BillingReason:
    if local.cloud and remote.cloud and local.cloud != remote.cloud:
        return _OTHER_CLOUD
    if local.region and remote.region and local.region != remote.region:
        if scope is _SCOPE_PEERED:
            return _PEERED_RANGE_OTHER_REGION
        return _REGIONS_DIFFER
    if local.zone and remote.zone:
        return _ZONES_EQUAL if local.zone == remote.zone else _ZONES_DIFFER
    return _ZONE_UNKNOWN
