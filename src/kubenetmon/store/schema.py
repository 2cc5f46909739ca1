"""The `network_flows_0` table: one column list, rendered as DDL and checked against what exists.

The seed table (upstream kubenetmon's `network_flows_0`) keeps its 35 columns, types, codecs, partitioning,
TTL and PRIMARY KEY, so queries written for it run unchanged. Attribution now knows more than the seed
could store; those columns are appended, and so is their place in ORDER BY: in a SummingMergeTree every
column that is not summed must be part of the sorting key, or a merge keeps an arbitrary row's value for it.

Types are spelled exactly as ClickHouse reports them in `system.columns` (`Enum8(...)`, not `Enum(...)`),
so the DDL and the compatibility check read the same list and cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SUMMED = ("bytes", "packets")
PRIMARY_KEY = (
    "date",
    "intervalStartTime",
    "direction",
    "proto",
    "localApp",
    "remoteApp",
    "localPod",
    "remotePod",
)
TTL_DAYS = 90
DEDUPLICATION_WINDOW = 1000
"""Block hashes remembered per table for `insert_deduplication_token` without replication.

One flush is one to a few blocks (one per day partition and ~2 MB Native chunk), so 1000 covers hours of
retries at a 10 s flush interval. Cost: a small append-only log in the table directory and the hashes in
memory (measured in `benchmarks/store.py`: no measurable insert slowdown).
"""
ACCEPTED_ENGINES = frozenset({"SummingMergeTree", "ReplicatedSummingMergeTree", "SharedSummingMergeTree"})
"""ClickHouse Cloud reports SharedSummingMergeTree for a table created as SummingMergeTree."""


@dataclass(frozen=True, slots=True)
class Column:
    """One table column: its name, its type as `system.columns` spells it, and its compression codec."""

    name: str
    type: str
    codec: str = "ZSTD(1)"


_LC = "LowCardinality(String)"


def _side(side: str) -> tuple[Column, ...]:
    """The seed's columns describing one side of a flow; `local` and `remote` have the same twelve."""
    return (
        Column(f"{side}Cloud", _LC),
        Column(f"{side}Region", _LC),
        Column(f"{side}Cluster", _LC),
        Column(f"{side}Cell", _LC),
        Column(f"{side}AvailabilityZone", _LC),
        Column(f"{side}Node", "String"),
        Column(f"{side}InstanceID", "String"),
        Column(f"{side}Namespace", _LC),
        Column(f"{side}Pod", "String"),
        Column(f"{side}IPv4", "IPv4", "Delta(4), ZSTD(1)"),
        Column(f"{side}Port", "UInt16", "Delta(2), ZSTD(1)"),
        Column(f"{side}App", "String"),
    )


SEED_COLUMNS: tuple[Column, ...] = (
    Column("date", "Date", "Delta(2), ZSTD(1)"),
    Column("intervalStartTime", "DateTime", "Delta(4), ZSTD(1)"),
    Column("intervalSeconds", "UInt16", "Delta(2), ZSTD(1)"),
    Column("environment", _LC),
    Column("proto", _LC),
    Column("connectionClass", _LC),
    Column("connectionFlags", "Map(LowCardinality(String), Bool)"),
    Column("direction", "Enum8('out' = 1, 'in' = 2)"),
    *_side("local"),
    *_side("remote"),
    Column("remoteCloudService", _LC),
    Column("bytes", "UInt64", "Delta(8), ZSTD(1)"),
    Column("packets", "UInt64", "Delta(8), ZSTD(1)"),
)

EXTENSION_COLUMNS: tuple[Column, ...] = (
    Column("localKind", _LC),
    Column("localWorkload", _LC),
    Column("localWorkloadKind", _LC),
    Column("localService", _LC),
    Column("localIPv6", "IPv6"),
    Column("remoteKind", _LC),
    Column("remoteWorkload", _LC),
    Column("remoteWorkloadKind", _LC),
    Column("remoteService", _LC),
    Column("remoteIPv6", "IPv6"),
    Column("billingClass", _LC),
    Column("billingReason", _LC),
    Column("observationPoint", _LC),
    Column("countOnce", "Bool"),
)

COLUMNS: tuple[Column, ...] = SEED_COLUMNS + EXTENSION_COLUMNS
COLUMN_NAMES: tuple[str, ...] = tuple(column.name for column in COLUMNS)
COLUMN_TYPES: tuple[str, ...] = tuple(column.type for column in COLUMNS)
SORTING_KEY: tuple[str, ...] = PRIMARY_KEY + tuple(
    column.name for column in COLUMNS if column.name not in PRIMARY_KEY and column.name not in SUMMED
)
"""The seed's ORDER BY (primary key, then its other dimensions in table order), then the extensions."""


@dataclass(frozen=True, slots=True)
class TableName:
    """Where the flows live. In a cluster, `table` is the Distributed table and `local` the shards' table."""

    database: str = "default"
    table: str = "network_flows_0"
    cluster: str = ""

    @property
    def local(self) -> str:
        return f"{self.table}_local" if self.cluster else self.table

    @property
    def qualified(self) -> str:
        """`db`.`table` as inserts and queries address it."""
        return f"{quote(self.database)}.{quote(self.table)}"


def quote(identifier: str) -> str:
    """A backquoted ClickHouse identifier."""
    return "`" + identifier.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _column_list() -> str:
    return ",\n".join(f"    {quote(c.name)} {c.type} CODEC({c.codec})" for c in COLUMNS)


def _table_body(engine: str, settings: str) -> str:
    return (
        f"(\n{_column_list()}\n)\n"
        f"ENGINE = {engine}\n"
        "PARTITION BY date\n"
        f"PRIMARY KEY ({', '.join(PRIMARY_KEY)})\n"
        f"ORDER BY ({', '.join(SORTING_KEY)})\n"
        f"TTL intervalStartTime + toIntervalDay({TTL_DAYS})\n"
        f"SETTINGS {settings}"
    )


def create_statements(name: TableName) -> list[str]:
    """The idempotent DDL that creates what is missing: database, then table(s).

    Single server (and the embedded engine): one SummingMergeTree. With `name.cluster`: a
    ReplicatedSummingMergeTree on every shard (`<table>_local`) and a Distributed table in front of it,
    all `ON CLUSTER`. Summing only happens within a shard, which is why every query sums; the sharding key
    keeps one pod pair on one shard so merges still collapse most keys.
    """
    db = quote(name.database)
    if not name.cluster:
        settings = (
            f"index_granularity = 8192, ttl_only_drop_parts = 1, "
            f"non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}"
        )
        return [
            f"CREATE DATABASE IF NOT EXISTS {db}",
            f"CREATE TABLE IF NOT EXISTS {db}.{quote(name.table)}\n"
            + _table_body(f"SummingMergeTree(({', '.join(SUMMED)}))", settings),
        ]
    on_cluster = f"ON CLUSTER {_literal(name.cluster)}"
    replicated = (
        "ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', "
        f"({', '.join(SUMMED)}))"
    )
    return [
        f"CREATE DATABASE IF NOT EXISTS {db} {on_cluster}",
        f"CREATE TABLE IF NOT EXISTS {db}.{quote(name.local)} {on_cluster}\n"
        + _table_body(replicated, "index_granularity = 8192, ttl_only_drop_parts = 1"),
        f"CREATE TABLE IF NOT EXISTS {db}.{quote(name.table)} {on_cluster} AS {db}.{quote(name.local)}\n"
        f"ENGINE = Distributed({_literal(name.cluster)}, {_literal(name.database)}, {_literal(name.local)}, "
        "cityHash64(localPod, remotePod))",
    ]


def ddl_script(name: TableName) -> str:
    """`create_statements` as one `;`-separated script (what deploy/clickhouse/*.sql holds)."""
    return "".join(f"{statement};\n\n" for statement in create_statements(name))


@dataclass(frozen=True, slots=True)
class ExistingTable:
    """What `system.tables` and `system.columns` say about one table."""

    engine: str
    sorting_key: tuple[str, ...]
    columns: Mapping[str, str]
    """name -> type as ClickHouse spells it."""


def parse_key(key: str) -> tuple[str, ...]:
    """`system.tables.sorting_key` ("date, intervalStartTime, ...") as a tuple of column names."""
    return tuple(part.strip().strip("`") for part in key.split(",") if part.strip())


def problems(existing: ExistingTable, *, distributed: bool = False) -> list[str]:
    """Everything that makes an existing table unusable for our inserts; empty when it is compatible.

    `distributed` checks a cluster's Distributed front table, which has columns but no engine key.
    """
    found: list[str] = []
    missing = [c.name for c in SEED_COLUMNS if c.name not in existing.columns]
    if missing:
        found.append(f"missing seed columns: {', '.join(missing)}")
    wrong = [
        f"{c.name} is {existing.columns[c.name]}, expected {c.type}"
        for c in COLUMNS
        if c.name in existing.columns and existing.columns[c.name] != c.type
    ]
    found.extend(wrong)
    if distributed:
        if existing.engine != "Distributed":
            found.append(f"engine is {existing.engine}, expected Distributed in front of the shards' table")
        return found
    if existing.engine not in ACCEPTED_ENGINES:
        found.append(f"engine is {existing.engine}, expected SummingMergeTree((bytes, packets))")
    unkeyed = [
        n for n in COLUMN_NAMES if n not in SUMMED and n in existing.columns and n not in existing.sorting_key
    ]
    if unkeyed:
        found.append(f"ORDER BY lacks {', '.join(unkeyed)} (SummingMergeTree would keep arbitrary values)")
    return found


def missing_extensions(existing: ExistingTable) -> list[str]:
    """Extension columns an otherwise valid (seed) table lacks."""
    return [c.name for c in EXTENSION_COLUMNS if c.name not in existing.columns]


def migration_statements(name: TableName) -> list[str]:
    """How to move a seed-only table to the extended schema, keeping its rows.

    ALTER ... ADD COLUMN cannot put the new columns into ORDER BY, so the only correct move is a new table
    and a copy. Legacy rows have no countOnce; the rule below marks what upstream counted once when told to
    filter `direction = 'out'`, plus rows only one node can have seen (remote not a pod, or same node).
    """
    table, old = quote(name.table), quote(f"{name.table}_seed")
    db = quote(name.database)
    seed = ", ".join(quote(c.name) for c in SEED_COLUMNS)
    return [
        f"RENAME TABLE {db}.{table} TO {db}.{old}",
        *create_statements(TableName(name.database, name.table))[1:],
        f"INSERT INTO {db}.{table} ({seed}, localIPv6, remoteIPv6, countOnce) "
        f"SELECT {seed}, toIPv6(localIPv4), toIPv6(remoteIPv4), "
        f"direction = 'out' OR remotePod = '' OR remoteNode = localNode FROM {db}.{old}",
    ]


def refusal(name: TableName, existing: ExistingTable, found: Sequence[str]) -> str:
    """The message the server stops with when the table exists but cannot be used."""
    lines = [f"table {name.database}.{name.table} exists but kubenetmon cannot write to it:"]
    lines += [f"  - {problem}" for problem in found]
    if not found and missing_extensions(existing) and name.cluster:
        lines = [
            f"table {name.database}.{name.table} has the seed schema but not kubenetmon's extension columns; "
            "ALTER cannot add them to ORDER BY. Create a new table from deploy/clickhouse/"
            "network_flows_0.cluster.sql, point the store at it (?table=NAME) and copy the rows with "
            "INSERT ... SELECT (see deploy/clickhouse/README.md)."
        ]
    elif not found and missing_extensions(existing):
        lines = [
            f"table {name.database}.{name.table} has the seed schema but not kubenetmon's extension columns "
            f"({', '.join(missing_extensions(existing))}); adding them with ALTER cannot extend ORDER BY, "
            "so summing would be wrong. Migrate it (copies every row) with:",
            "",
            *(f"{statement};" for statement in migration_statements(name)),
            "",
            "or point the store at a new table (DSN query parameter ?table=NAME).",
        ]
    return "\n".join(lines)
