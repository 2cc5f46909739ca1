"""`kubenetmon lab up|status|down`: a network-namespace lab by hand.

`up` builds a lab and leaves it running; `status` lists the labs recorded under the state directory;
`down` tears recorded labs down. Only namespaces a lab record names (all under that lab's random
prefix) are ever deleted.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from kubenetmon.cli import option
from kubenetmon.lab import Lab, LabError, Topology, state
from kubenetmon.lab.lab import Host, tear_down_recorded
from kubenetmon.lab.netns import existing_namespaces

TOPOLOGIES = {"demo": Topology.demo, "two-nodes": Topology.two_nodes}

state_dir_option = option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=state.STATE_DIR,
    show_default=True,
    help="Where lab records are kept.",
    prefix="KUBENETMON_LAB_",
)
json_option = option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON instead of tables.",
    prefix="KUBENETMON_LAB_",
)


@click.group(name="lab")
def command() -> None:
    """Build, list or tear down network-namespace labs (needs root)."""


@command.command()
@option(
    "--topology",
    type=click.Choice(sorted(TOPOLOGIES)),
    default="demo",
    show_default=True,
    help="Which ready-made topology to build.",
    prefix="KUBENETMON_LAB_",
)
@option(
    "--conntrack-accounting/--no-conntrack-accounting",
    default=True,
    show_default=True,
    help="Set nf_conntrack_acct=1 and nf_conntrack_events=1 in the nodes (off: a new netns's 0 and 2).",
    prefix="KUBENETMON_LAB_",
)
@state_dir_option
@json_option
def up(topology: str, conntrack_accounting: bool, state_dir: Path, as_json: bool) -> None:
    """Build a lab and leave it up; `kubenetmon lab down` removes it."""
    lab = Lab(TOPOLOGIES[topology](), conntrack_accounting=conntrack_accounting, state_dir=state_dir)
    try:
        lab.up()
    except LabError as exc:
        raise click.ClickException(str(exc)) from exc
    lab.keep()
    if as_json:
        click.echo(json.dumps(_lab_json(lab, set(lab.namespaces)), indent=2))
        return
    console = Console()
    console.print(f"lab [bold]{lab.id}[/bold] up ({topology}); namespaces start with {lab.prefix}")
    console.print(_hosts_table(lab.hosts(), set(lab.namespaces)))


@command.command()
@click.argument("lab_id", required=False)
@state_dir_option
@json_option
def status(lab_id: str | None, state_dir: Path, as_json: bool) -> None:
    """List recorded labs, or show every host of one lab."""
    records = [state.read_record(state_dir, lab_id)] if lab_id else state.read_records(state_dir)
    present = existing_namespaces()
    if as_json:
        labs = [_lab_json(Lab.attach(record.id, state_dir), present) for record in records]
        click.echo(json.dumps(labs, indent=2))
        return
    console = Console()
    if not records:
        console.print(f"no labs recorded in {state_dir}")
        return
    console.print(_labs_table(records, present))
    if lab_id:
        console.print(_hosts_table(Lab.attach(lab_id, state_dir).hosts(), present))


@command.command()
@click.argument("lab_ids", nargs=-1)
@option(
    "--force",
    is_flag=True,
    help="Also remove labs whose building process still runs and did not leave them up on purpose.",
    prefix="KUBENETMON_LAB_",
)
@state_dir_option
@json_option
def down(lab_ids: tuple[str, ...], force: bool, state_dir: Path, as_json: bool) -> None:
    """Tear down the given labs, or every recorded lab left up or orphaned by a dead process."""
    records = [state.read_record(state_dir, i) for i in lab_ids] if lab_ids else state.read_records(state_dir)
    removed: dict[str, list[str]] = {}
    skipped: list[str] = []
    for record in records:
        if record.owner_alive and not record.kept and not force:
            skipped.append(record.id)
            continue
        try:
            removed[record.id] = tear_down_recorded(record, state_dir)
        except LabError as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({"removed": removed, "skipped_in_use": skipped}, indent=2))
        return
    for lab_id, names in removed.items():
        click.echo(f"lab {lab_id}: deleted {len(names)} namespaces")
    for lab_id in skipped:
        click.echo(f"lab {lab_id}: in use by a running process; left alone (--force removes it)")
    if not records:
        click.echo(f"no labs recorded in {state_dir}")


def _lab_json(lab: Lab, present: set[str]) -> dict[str, Any]:
    return {
        "id": lab.id,
        "prefix": lab.prefix,
        "topology": lab.topology.name,
        "conntrack_accounting": lab.conntrack_accounting,
        "namespaces_present": sum(name in present for name in lab.namespaces),
        "namespaces_total": len(lab.namespaces),
        "hosts": [dataclasses.asdict(host) for host in lab.hosts()],
        "services": [
            {"key": s.key, "vip_v4": s.vip_v4, "vip_v6": s.vip_v6, "port": s.port, "backends": s.backend_keys}
            for s in lab.topology.services
        ],
    }


def _labs_table(records: list[state.LabRecord], present: set[str]) -> Table:
    table = Table(title="labs")
    for column in ("id", "topology", "namespaces", "left up", "owner"):
        table.add_column(column)
    for record in records:
        alive = sum(name in present for name in record.namespaces)
        owner = f"{record.owner_pid} ({'running' if record.owner_alive else 'gone'})"
        table.add_row(
            record.id,
            str(record.topology.get("name")),
            f"{alive}/{len(record.namespaces)}",
            "yes" if record.kept else "no",
            owner,
        )
    return table


def _hosts_table(hosts: list[Host], present: set[str]) -> Table:
    table = Table(title="hosts")
    for column in ("kind", "name", "netns", "IPv4", "IPv6", "node", "zone", "region"):
        table.add_column(column, overflow="fold")
    for host in hosts:
        netns = host.netns if host.netns in present else f"{host.netns} (missing)"
        table.add_row(
            host.kind,
            host.name,
            netns,
            host.ipv4,
            host.ipv6,
            host.node or "",
            host.zone or "",
            host.region or "",
        )
    return table
