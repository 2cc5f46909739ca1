"""The DDL in deploy/clickhouse, rendered from the schema module (`python -m tests.store.deploy_ddl`)."""

from __future__ import annotations

from pathlib import Path

from kubenetmon.store.schema import TableName, ddl_script

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "clickhouse"
HEADER = "-- Generated from kubenetmon.store.schema by `python -m tests.store.deploy_ddl`; do not edit.\n"
FILES = {
    "network_flows_0.sql": TableName(),
    "network_flows_0.cluster.sql": TableName(cluster="{cluster}"),
}


def rendered() -> dict[str, str]:
    """File name -> the text it must hold."""
    return {name: HEADER + "\n" + ddl_script(table) for name, table in FILES.items()}


if __name__ == "__main__":
    for name, text in rendered().items():
        (DEPLOY / name).write_text(text)
        print(f"wrote {DEPLOY / name}")
