"""Ready answers over `network_flows_0`: the SQL, what each query means, and the data objects they return.

How the rows are read (the rules every query here follows):

* Every query sums: SummingMergeTree merges are eventual, so a key may still be split over parts.
* **countOnce**: a byte between two pods on different nodes is reported by both nodes (as `out` at the
  sender's, as `in` at the receiver's). Attribution marks exactly one of those rows `countOnce`; byte
  totals use only those rows, so nothing is double counted across observation points.
* **Sender and receiver**: `direction` is the byte direction relative to the row's local endpoint, so
  the sender is `local` for `out` rows and `remote` for `in` rows. Reports name flows by sender/receiver.
* **Who opened a connection** is not the byte direction. Per row, the opener is decided by the first
  evidence present: the flags `local-initiated` / `remote-initiated` (set by attribution from the conntrack
  original tuple, when it does so); the local side addressed a Service (`remoteService` set: local opened);
  the local side was reached through a Service (`localService` set: remote opened); otherwise the lower
  port is the listener. Rows where no evidence decides (equal ports) are left out of the roles report.
* **Names**: a side is `namespace/workload` when known, else `namespace/pod`, `node/<name>`,
  `<cloud>:<service>` for cloud services, else its IP address.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kubenetmon.store.dsn import StoreSettings
from kubenetmon.store.sink import QueryResult


class Queryable(Protocol):
    settings: StoreSettings

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult: ...


@dataclass(frozen=True, slots=True)
class Window:
    """Half-open time range [start, end) in epoch seconds, compared with `intervalStartTime`."""

    start: int
    end: int

    @classmethod
    def last(cls, seconds: int, now: float | None = None) -> Window:
        """The `seconds` before `now` (default: the current time)."""
        end = int(time.time() if now is None else now) + 1
        return cls(end - seconds, end)

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"time window ends ({self.end}) before it starts ({self.start})")


@dataclass(frozen=True, slots=True)
class Report:
    """One answer: a titled table plus what it means and which window it covers."""

    name: str
    title: str
    meaning: str
    window: Window
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


def _who(side: str) -> str:
    """SQL naming one side of a row (see the module docstring)."""
    cloud = (
        f"{side}CloudService != '', concat({side}Cloud, ':', {side}CloudService), "
        if side == "remote"
        else ""
    )
    return (
        f"multiIf({side}Workload != '', concat({side}Namespace, '/', {side}Workload), "
        f"{side}Pod != '', concat({side}Namespace, '/', {side}Pod), "
        f"{side}Node != '', concat('node/', {side}Node), {cloud}"
        f"{side}IPv4 != toIPv4('0.0.0.0'), toString({side}IPv4), toString({side}IPv6))"
    )


_LOCAL, _REMOTE = _who("local"), _who("remote")
_WINDOW = (
    "date >= toDate(toDateTime({start:UInt32}, 'UTC')) AND date <= toDate(toDateTime({end:UInt32}, 'UTC')) "
    "AND intervalStartTime >= toDateTime({start:UInt32}) AND intervalStartTime < toDateTime({end:UInt32})"
)
_SENDER = f"if(direction = 'out', {_LOCAL}, {_REMOTE})"
_RECEIVER = f"if(direction = 'out', {_REMOTE}, {_LOCAL})"
_SENDER_ZONE = "if(direction = 'out', localAvailabilityZone, remoteAvailabilityZone)"
_RECEIVER_ZONE = "if(direction = 'out', remoteAvailabilityZone, localAvailabilityZone)"
_OPENER = (
    "multiIf(connectionFlags['local-initiated'], 'local', connectionFlags['remote-initiated'], 'remote', "
    "remoteService != '', 'local', localService != '', 'remote', "
    "remotePort < localPort, 'local', localPort < remotePort, 'remote', '')"
)

CROSS_ZONE_TALKERS = f"""
SELECT {_SENDER} AS sender, {_SENDER_ZONE} AS sender_zone, {_RECEIVER} AS receiver,
       {_RECEIVER_ZONE} AS receiver_zone, sum(bytes) AS total_bytes, sum(packets) AS total_packets
FROM {{db:Identifier}}.{{tbl:Identifier}}
WHERE {_WINDOW} AND countOnce AND billingClass = 'cross-zone'
GROUP BY sender, sender_zone, receiver, receiver_zone
ORDER BY total_bytes DESC, sender, receiver
LIMIT {{limit:UInt32}}
"""

CLOUD_SERVICES = f"""
SELECT {_LOCAL} AS workload, remoteCloud AS cloud, remoteRegion AS region, remoteCloudService AS service,
       sumIf(bytes, direction = 'out') AS bytes_sent, sumIf(bytes, direction = 'in') AS bytes_received
FROM {{db:Identifier}}.{{tbl:Identifier}}
WHERE {_WINDOW} AND countOnce AND remoteCloudService != ''
GROUP BY workload, cloud, region, service
ORDER BY bytes_sent + bytes_received DESC, workload, service
LIMIT {{limit:UInt32}}
"""

CONNECTION_ROLES = f"""
SELECT who,
       uniqExactIf(peer, role = 'opens') AS opens_to,
       uniqExactIf(peer, role = 'accepts') AS accepts_from,
       sumIf(bytes, role = 'opens' AND countOnce) AS bytes_as_opener,
       sumIf(bytes, role = 'accepts' AND countOnce) AS bytes_as_acceptor,
       multiIf(opens_to > 0 AND accepts_from > 0, 'opens and accepts', opens_to > 0, 'opens only',
               'accepts only') AS behaviour
FROM (
    SELECT arrayJoin([(opener, acceptor, 'opens', opener_is_pod),
                      (acceptor, opener, 'accepts', acceptor_is_pod)]) AS fact,
           fact.1 AS who, fact.2 AS peer, fact.3 AS role, fact.4 AS is_pod, bytes, countOnce
    FROM (
        SELECT {_OPENER} AS opener_side,
               if(opener_side = 'local', {_LOCAL}, {_REMOTE}) AS opener,
               if(opener_side = 'local', {_REMOTE}, {_LOCAL}) AS acceptor,
               if(opener_side = 'local', localPod, remotePod) != '' AS opener_is_pod,
               if(opener_side = 'local', remotePod, localPod) != '' AS acceptor_is_pod,
               bytes, countOnce
        FROM {{db:Identifier}}.{{tbl:Identifier}}
        WHERE {_WINDOW}
    )
    WHERE opener_side != ''
)
WHERE is_pod
GROUP BY who
ORDER BY behaviour, who
"""

ZONE_MATRIX = f"""
SELECT {_SENDER_ZONE} AS from_zone, {_RECEIVER_ZONE} AS to_zone, sum(bytes) AS total_bytes
FROM {{db:Identifier}}.{{tbl:Identifier}}
WHERE {_WINDOW} AND countOnce
GROUP BY from_zone, to_zone
"""


@dataclass(frozen=True, slots=True)
class ReportQuery:
    """One ready answer: its name on the command line, its title, what its numbers mean, and its SQL."""

    name: str
    title: str
    meaning: str
    sql: str


CROSS_ZONE = ReportQuery(
    "cross-zone",
    "Top cross-zone talkers",
    "Bytes billed as cross-zone (counted once), per sender -> receiver pair with their zones, largest first.",
    CROSS_ZONE_TALKERS,
)
CLOUD = ReportQuery(
    "cloud-services",
    "Traffic to cloud services",
    "Bytes each workload sent to and received from each cloud service (S3, DynamoDB, ...), per cloud "
    "and region.",
    CLOUD_SERVICES,
)
ROLES = ReportQuery(
    "roles",
    "Who opens connections, who only accepts them",
    "Per workload (pods only): distinct peers it opened connections to and accepted them from, and the bytes "
    "it moved in each role (both directions, counted once). 'accepts only' workloads are inbound-only.",
    CONNECTION_ROLES,
)
ZONES = ReportQuery(
    "zone-matrix",
    "Zone-to-zone bytes",
    "Bytes (counted once) from each sending zone (rows) to each receiving zone (columns); (outside) is "
    "anything without a zone: cloud services, the internet, unknown peers.",
    ZONE_MATRIX,
)


def _run(store: Queryable, query: ReportQuery, window: Window, **extra: Any) -> Report:
    name = store.settings.name
    params = {"db": name.database, "tbl": name.table, "start": window.start, "end": window.end, **extra}
    result = store.query(query.sql, params)
    return Report(query.name, query.title, query.meaning, window, result.columns, result.rows)


def cross_zone_talkers(store: Queryable, window: Window, limit: int = 20) -> Report:
    """The largest cross-zone sender -> receiver pairs."""
    return _run(store, CROSS_ZONE, window, limit=limit)


def cloud_services(store: Queryable, window: Window, limit: int = 50) -> Report:
    """Traffic between workloads and cloud services."""
    return _run(store, CLOUD, window, limit=limit)


def connection_roles(store: Queryable, window: Window) -> Report:
    """Which workloads open connections and which only accept them."""
    return _run(store, ROLES, window)


def zone_matrix(store: Queryable, window: Window) -> Report:
    """Bytes between zones as a matrix: one row per sending zone, one column per receiving zone."""
    cells = _run(store, ZONES, window)
    columns, rows = pivot(cells.rows)
    return Report(cells.name, cells.title, cells.meaning, window, columns, rows)


def pivot(cells: list[tuple[Any, ...]]) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    """(from, to, value) cells as a matrix: columns ('from \\ to', zones...), one row per from-zone."""
    zones = sorted({cell[0] for cell in cells} | {cell[1] for cell in cells})
    values = {(cell[0], cell[1]): cell[2] for cell in cells}
    label = [zone or "(outside)" for zone in zones]
    rows = [(label[i], *(values.get((zone, to), 0) for to in zones)) for i, zone in enumerate(zones)]
    return ("from \\ to", *label), rows


REPORTS: dict[str, Callable[[Queryable, Window], Report]] = {
    CROSS_ZONE.name: cross_zone_talkers,
    CLOUD.name: cloud_services,
    ROLES.name: connection_roles,
    ZONES.name: zone_matrix,
}
"""Every report by its command-line name, in the order `kubenetmon report` prints them."""
