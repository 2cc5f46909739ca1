"""From one agent `FlowRecord` to the `AttributedRow`s it stands for. Pure apart from bounded memos.

Endpoints. The client is the original source. The server is the reply source: under DNAT that is the
real backend, not the Service address. When the original destination differs from the reply source
(address or port) the flow was DNATed (flag `dnat`) and the Service whose ClusterIP, LoadBalancer IP or
NodePort was addressed is named as `remote_service` on the client's side. When the reply destination
differs from the original source the flow was SNATed (flag `snat`). On the backend's node conntrack only
shows the translated tuple; there the Service is named by `service_of_backend` as `local_service`.

Local side (see direction.place). The endpoint on the observing node is local, the client when both
are (a same-node flow has one conntrack entry). When neither is:
* if the node SNATed the flow to one of its own addresses, the node itself is an endpoint of two legs
  (client <-> node and node <-> backend) and each leg gets its own rows with the node as local side
  (flag `proxied`, outcome PROXIED); the Service addressed is local_service of the client leg and
  remote_service of the backend leg;
* otherwise the node only forwarded it: the pod is local if exactly the server is one, else the client
  (flag `forwarded`, outcome FORWARDED).

Rows. One per direction with bytes or packets: OUT carries local -> remote, IN remote -> local.
local_ip/remote_ip are the real endpoints as seen (never a Service VIP). `count_once` follows
direction.counted_here. `bucket_start` is the start of the bucket (settings.bucket_seconds) holding the
record's interval start. Cluster endpoints without cloud, region or cluster take the server's; remote
cluster endpoints therefore carry this cluster's name, and other remotes none.

Nothing is dropped: a record whose node or endpoints are unknown still yields rows with what is known
(unknown parts have kind UNKNOWN or empty fields), and its `Outcome` says why, for the server to count.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
from typing import NamedTuple

from kubenetmon.records import PROTO_NAMES, AttributedRow, Direction, Endpoint, EndpointKind, FlowRecord
from kubenetmon.server.attribution.classify import CLASSES, Scope, classify
from kubenetmon.server.attribution.direction import Placement, counted_here, place
from kubenetmon.server.attribution.lookups import Lookups
from kubenetmon.server.attribution.settings import AttributionSettings
from kubenetmon.server.cloud.ranges import PrefixTable

_CLUSTER_KINDS = frozenset({EndpointKind.POD, EndpointKind.NODE})
_MEMO_LIMIT = 1 << 18
_new_row = tuple.__new__
_OUT, _IN = Direction.OUT, Direction.IN


class Outcome(enum.StrEnum):
    """How well a record could be attributed; one per record, for the server's metrics."""

    ATTRIBUTED = "attributed"
    """The local endpoint is a pod or node on the observing node."""
    PROXIED = "proxied"
    """The observing node SNATed the flow to itself; two legs, the node local on both."""
    FORWARDED = "forwarded"
    """Neither endpoint is on the observing node; it only forwarded the flow."""
    NO_CLUSTER_ENDPOINT = "no-cluster-endpoint"
    """Neither address is a known pod or node: often a node address missing from the inventory."""
    UNKNOWN_NODE = "unknown-node"
    """The observing node is not in the inventory; rows carry the server's default placement."""
    EMPTY = "empty"
    """No bytes and no packets: no rows."""


class Attribution(NamedTuple):
    """The rows one record became, and how well it went."""

    rows: list[AttributedRow]
    outcome: Outcome


_Side = tuple[Endpoint, Scope, str, int, bool, bool]
"""An endpoint, the scope it was found in, its address and port as seen, whether it is a cluster endpoint
on the observing node, and whether it is one on another node (see direction.counted_here)."""
_Head = tuple[int, int, str, str, str]
"""bucket start, bucket seconds, environment, protocol, observing node: the same for every row of a record."""
_Leg = tuple[_Side, _Side, str, str, tuple[int, int], tuple[int, int]]
"""(local, remote, local_service, remote_service, (out bytes, packets), (in bytes, packets))."""


class Attributor:
    """Attributes records against one set of lookups and settings; `attribute` is the hot path."""

    def __init__(self, lookups: Lookups, settings: AttributionSettings) -> None:
        self.settings = settings.validated()
        self._endpoint_at = lookups.endpoints.endpoint_at
        self._node = lookups.endpoints.node
        self._service_at = lookups.services.service_at
        self._service_of_backend = lookups.services.service_of_backend
        self._external = lookups.external.external
        self._cloud_range = lookups.external.cloud_range
        self._private = PrefixTable((cidr, _PRIVATE) for cidr in settings.private_ranges)
        self._peered = PrefixTable(
            (
                p.cidr,
                Endpoint(EndpointKind.PRIVATE, cloud=p.cloud or settings.cloud, region=p.region, zone=p.zone),
            )
            for p in settings.peered_ranges
        )
        self._proto = dict(PROTO_NAMES)
        self._bucket, self._environment = settings.bucket_seconds, settings.environment
        self._placed: dict[Endpoint, Endpoint] = {}
        self._planned: dict[str, tuple[Endpoint, Scope] | None] = {}
        self._unknown_nodes: dict[str, Endpoint] = {}

    def attribute(self, record: FlowRecord) -> Attribution:
        """The rows `record` stands for (zero to four) and the outcome to count."""
        r = record
        if not (r.orig_bytes or r.orig_packets or r.reply_bytes or r.reply_packets):
            return _new_row(Attribution, ([], _EMPTY_OUTCOME))
        when, node = r.start, r.node
        orig_src, orig_dst, orig_sport, orig_dport = r.orig_src, r.orig_dst, r.orig_sport, r.orig_dport
        reply_src, reply_dst, reply_sport, reply_dport = (
            r.reply_src,
            r.reply_dst,
            r.reply_sport,
            r.reply_dport,
        )
        proto = self._proto.get(r.proto) or str(r.proto)
        client, client_scope = self._resolve(orig_src, when)
        server, server_scope = self._resolve(reply_src, when)
        dnat = orig_dst != reply_src or orig_dport != reply_sport
        snat = reply_dst != orig_src or reply_dport != orig_sport
        addressed = (self._service_at(orig_dst, orig_dport, proto, when) or "") if dnat else ""
        if server_scope is not _CLUSTER and not dnat:
            addressed = self._service_at(reply_src, reply_sport, proto, when) or ""
            if addressed and server_scope is not _INVENTORY:
                server, server_scope = _SERVICE, _S_SERVICE
        client_cluster, server_cluster = client_scope is _CLUSTER, server_scope is _CLUSTER
        client_here = client_cluster and client.node == node
        server_here = server_cluster and server.node == node
        node_endpoint = self._node(node)
        if client_here:  # by far the most common case, decided without a call
            placement = _CLIENT_LOCAL
        else:
            snat_to_node = snat and not server_here and self._is_on_node(reply_dst, when, node)
            is_pod = (client.kind is _POD, server.kind is _POD)
            placement = place(client_here, server_here, snat_to_node, *is_pod)
        client_away = client_cluster and not client_here and client.node != ""
        server_away = server_cluster and not server_here and server.node != ""
        client_side: _Side = (client, client_scope, orig_src, orig_sport, client_here, client_away)
        server_side: _Side = (server, server_scope, reply_src, reply_sport, server_here, server_away)
        forward, backward = (r.orig_bytes, r.orig_packets), (r.reply_bytes, r.reply_packets)
        bucket = self._bucket
        head = (int(when // bucket) * bucket, bucket, self._environment, proto, node)
        flags = _FLAGS[dnat, snat, placement] if dnat or snat or placement is not _CLIENT_LOCAL else ()
        same_node = client_here and server_here
        rows: list[AttributedRow] = []
        if placement is _CLIENT_LOCAL or placement is _FORWARDED_CLIENT:
            self._emit(
                rows, head, (client_side, server_side, "", addressed, forward, backward), flags, same_node
            )
        elif placement is _PROXIED:
            me = self._placed_node(node, node_endpoint)
            front: _Side = (me, _CLUSTER, orig_dst, orig_dport, True, False)
            back: _Side = (me, _CLUSTER, reply_dst, reply_dport, True, False)
            self._emit(rows, head, (front, client_side, addressed, "", backward, forward), flags, False)
            self._emit(rows, head, (back, server_side, "", addressed, forward, backward), flags, False)
        else:
            backend_of = addressed or self._service_of_backend(reply_src, reply_sport, proto, when) or ""
            self._emit(
                rows, head, (server_side, client_side, backend_of, "", backward, forward), flags, same_node
            )
        return _new_row(
            Attribution, (rows, self._outcome(placement, node_endpoint, client_scope, server_scope))
        )

    def _emit(
        self, rows: list[AttributedRow], head: _Head, leg: _Leg, flags: tuple[str, ...], same_node: bool
    ) -> None:
        (
            local_side,
            remote_side,
            local_service,
            remote_service,
            (out_bytes, out_packets),
            (in_bytes, in_packets),
        ) = leg
        local, _, local_ip, local_port, local_here, local_away = local_side
        remote, remote_scope, remote_ip, remote_port, remote_here, remote_away = remote_side
        reason = classify(local, remote, remote_scope, same_node)
        connection_class, billing_class = CLASSES[reason]
        if local.flags or remote.flags:
            flags = tuple(sorted({*flags, *local.flags, *remote.flags}))
        bucket, bucket_seconds, environment, proto, node = head
        middle = (local, remote, local_ip, local_port, remote_ip, remote_port, local_service, remote_service,
                  connection_class, billing_class, reason, flags, node)  # fmt: skip
        # `sender_here or counted_here(...)` skips the call in the common case (a sender on the node counts).
        if out_bytes or out_packets:
            once = local_here or counted_here(local_here, local_away, remote_here, remote_away)
            row = (bucket, bucket_seconds, environment, proto, _OUT, *middle, once, out_bytes, out_packets)
            rows.append(_new_row(AttributedRow, row))
        if in_bytes or in_packets:
            once = remote_here or counted_here(remote_here, remote_away, local_here, local_away)
            row = (bucket, bucket_seconds, environment, proto, _IN, *middle, once, in_bytes, in_packets)
            rows.append(_new_row(AttributedRow, row))

    def _is_on_node(self, ip: str, when: float, node: str) -> bool:
        """Whether `ip` is an address of a pod or node on `node` (the SNAT address test for proxied flows)."""
        found, scope = self._resolve(ip, when)
        return scope is _CLUSTER and found.node == node

    def _outcome(
        self, placement: Placement, node_endpoint: Endpoint | None, client_scope: Scope, server_scope: Scope
    ) -> Outcome:
        if node_endpoint is None:
            return _UNKNOWN_NODE
        if client_scope is not _CLUSTER and server_scope is not _CLUSTER:
            return _NO_CLUSTER_ENDPOINT
        return _PLACEMENT_OUTCOMES[placement]

    def _resolve(self, ip: str, when: float) -> tuple[Endpoint, Scope]:
        """What `ip` is: cluster endpoint, inventory entry, configured range, cloud range or public."""
        found = self._endpoint_at(ip, when)
        if found is not None:
            if found.kind in _CLUSTER_KINDS:
                if not (found.cloud and found.region and found.cluster):
                    found = self._with_defaults(found)
                return found, _CLUSTER
            return found, _INVENTORY
        found = self._external(ip)
        if found is not None:
            return found, _INVENTORY
        planned = self._planned.get(ip, _UNPLANNED)
        if planned is _UNPLANNED:
            if len(self._planned) >= _MEMO_LIMIT:
                self._planned.clear()
            planned = self._planned[ip] = self._plan(ip)
        if planned is not None:
            return planned
        found = self._cloud_range(ip)
        if found is not None:
            return found, _S_CLOUD
        return _INTERNET, _S_PUBLIC

    def _plan(self, ip: str) -> tuple[Endpoint, Scope] | None:
        """The settings-only answer for `ip` (special addresses, peered and private ranges), or None."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return _UNKNOWN, _S_UNKNOWN
        if address.is_loopback or address.is_link_local:
            return _HOST_LOCAL, _S_HOST_LOCAL
        if address.is_multicast or address.is_unspecified or address == _BROADCAST:
            return _UNKNOWN, _S_SPECIAL
        peered = self._peered.lookup(ip)
        if peered is not None:
            return peered, _S_PEERED
        if self._private.lookup(ip) is not None:
            return _PRIVATE, _S_PRIVATE
        return None

    def _with_defaults(self, endpoint: Endpoint) -> Endpoint:
        """The endpoint with the server's cloud, region and cluster where its own are empty (memoised)."""
        placed = self._placed.get(endpoint)
        if placed is None:
            if len(self._placed) >= _MEMO_LIMIT:
                self._placed.clear()
            s = self.settings
            placed = self._placed[endpoint] = (
                dataclasses.replace(
                    endpoint,
                    cloud=endpoint.cloud or s.cloud,
                    region=endpoint.region or s.region,
                    cluster=endpoint.cluster or s.cluster,
                )
                if not (endpoint.cloud and endpoint.region and endpoint.cluster)
                else endpoint
            )
        return placed

    def _placed_node(self, name: str, endpoint: Endpoint | None) -> Endpoint:
        if endpoint is not None:
            return self._with_defaults(endpoint)
        unknown = self._unknown_nodes.get(name)
        if unknown is None:
            unknown = self._unknown_nodes[name] = self._with_defaults(
                Endpoint(EndpointKind.UNKNOWN, node=name)
            )
        return unknown


# Hot-path aliases: Python 3.11 reads Enum.MEMBER through a descriptor (about 150 ns a read, measured);
# a module global is one dictionary lookup.
_CLUSTER, _INVENTORY, _CLIENT_LOCAL = Scope.CLUSTER, Scope.INVENTORY, Placement.CLIENT_LOCAL
_FORWARDED_CLIENT, _PROXIED, _POD = Placement.FORWARDED_CLIENT, Placement.PROXIED, EndpointKind.POD
_EMPTY_OUTCOME, _UNKNOWN_NODE, _NO_CLUSTER_ENDPOINT = (
    Outcome.EMPTY,
    Outcome.UNKNOWN_NODE,
    Outcome.NO_CLUSTER_ENDPOINT,
)
_S_CLOUD = Scope.CLOUD
_S_HOST_LOCAL = Scope.HOST_LOCAL
_S_PEERED = Scope.PEERED
_S_PRIVATE = Scope.PRIVATE
_S_PUBLIC = Scope.PUBLIC
_S_SERVICE = Scope.SERVICE
_S_SPECIAL = Scope.SPECIAL
_S_UNKNOWN = Scope.UNKNOWN
_PRIVATE = Endpoint(EndpointKind.PRIVATE)
_HOST_LOCAL = Endpoint(EndpointKind.PRIVATE)
_INTERNET = Endpoint(EndpointKind.INTERNET)
_UNKNOWN = Endpoint(EndpointKind.UNKNOWN)
_SERVICE = Endpoint(EndpointKind.SERVICE)
_UNPLANNED = (_UNKNOWN, Scope.UNKNOWN)
_BROADCAST = ipaddress.ip_address("255.255.255.255")
_PLACEMENT_OUTCOMES = {
    Placement.CLIENT_LOCAL: Outcome.ATTRIBUTED,
    Placement.SERVER_LOCAL: Outcome.ATTRIBUTED,
    Placement.PROXIED: Outcome.PROXIED,
    Placement.FORWARDED_CLIENT: Outcome.FORWARDED,
    Placement.FORWARDED_SERVER: Outcome.FORWARDED,
}
_PLACEMENT_FLAGS = {
    Placement.PROXIED: ("proxied",),
    Placement.FORWARDED_CLIENT: ("forwarded",),
    Placement.FORWARDED_SERVER: ("forwarded",),
}
_FLAGS: dict[tuple[bool, bool, Placement], tuple[str, ...]] = {
    (dnat, snat, placement): tuple(
        sorted(
            (("dnat",) if dnat else ()) + (("snat",) if snat else ()) + _PLACEMENT_FLAGS.get(placement, ())
        )
    )
    for dnat in (False, True)
    for snat in (False, True)
    for placement in Placement
}
