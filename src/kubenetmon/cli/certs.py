"""`kubenetmon certs`: a CA, a server certificate and per-node client certificates for mTLS, as PEM files.

Meant for local runs, the demo and small clusters; in production use your own PKI (e.g. cert-manager) with
the same shape: the server certificate names the address agents dial, and each node's client
certificate carries the node name as a DNS SAN.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from kubenetmon.cli import option
from kubenetmon.transport import certificates

# Kubernetes node names are DNS-1123 subdomains; anything else is refused (it also becomes a file name).
_NODE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _check_node(ctx: click.Context, param: click.Parameter, nodes: tuple[str, ...]) -> tuple[str, ...]:
    for node in nodes:
        if len(node) > 253 or not _NODE_NAME.fullmatch(node):
            raise click.BadParameter(f"{node!r} is not a Kubernetes node name (a lower-case DNS name)")
    return nodes


@click.command(name="certs")
@option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("kubenetmon-certs"),
    show_default=True,
    help="Directory to write into. An existing CA there is reused, so nodes can be added later.",
    prefix="KUBENETMON_CERTS_",
)
@option(
    "--server-name",
    "server_names",
    multiple=True,
    help="Name or IP address agents use to reach the server (repeatable); makes server.pem.",
    prefix="KUBENETMON_CERTS_",
)
@option(
    "--node",
    "nodes",
    multiple=True,
    callback=_check_node,
    help="Node name to make a client certificate for (repeatable).",
    prefix="KUBENETMON_CERTS_",
)
@option(
    "--days",
    type=click.IntRange(1, 3650),
    default=365,
    show_default=True,
    help="Validity of the server and node certificates.",
    prefix="KUBENETMON_CERTS_",
)
@option(
    "--force",
    is_flag=True,
    help="Replace server and node certificates that already exist.",
    prefix="KUBENETMON_CERTS_",
)
def command(out: Path, server_names: tuple[str, ...], nodes: tuple[str, ...], days: int, force: bool) -> None:
    """Make a CA, a server certificate and per-node client certificates for agent <-> server mTLS."""
    if not server_names and not nodes:
        raise click.UsageError("nothing to make: give --server-name and/or --node")
    wanted = [(certificates.SERVER_CERT, certificates.SERVER_KEY)] if server_names else []
    wanted += [certificates.node_cert_names(node) for node in nodes]
    existing = [out / name for pair in wanted for name in pair if (out / name).exists()]
    if existing and not force:
        raise click.UsageError(f"{', '.join(map(str, existing))} already exist; pass --force to replace them")
    issuer, created = certificates.load_or_create_ca(out)
    expires = issuer.cert.not_valid_after_utc.date()
    lines = [
        (
            "wrote" if created else "reused",
            out / certificates.CA_CERT,
            f"CA certificate, valid until {expires}",
        )
    ]
    if created:
        lines.append(("wrote", out / certificates.CA_KEY, "CA private key: keep it off the cluster"))
    if server_names:
        cert, key = certificates.issue(issuer, server_names[0], list(server_names), server=True, days=days)
        certificates.write_pair(out, certificates.SERVER_CERT, certificates.SERVER_KEY, cert, key)
        lines.append(
            ("wrote", out / certificates.SERVER_CERT, f"server certificate for {', '.join(server_names)}")
        )
        lines.append(("wrote", out / certificates.SERVER_KEY, "server private key"))
    for node in nodes:
        cert_name, key_name = certificates.node_cert_names(node)
        cert, key = certificates.issue(issuer, node, [node], server=False, days=days)
        certificates.write_pair(out, cert_name, key_name, cert, key)
        lines.append(("wrote", out / cert_name, f"client certificate for node {node}"))
        lines.append(("wrote", out / key_name, f"private key of node {node}"))
    width = max(len(str(path)) for _, path, _ in lines)
    for verb, path, what in lines:
        click.echo(f"{verb:<6} {path!s:<{width}}  {what}")
