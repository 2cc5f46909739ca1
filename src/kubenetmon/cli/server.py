"""`kubenetmon server`: flags -> ServerSettings -> ServerDaemon."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import click

from kubenetmon.cli import logging_options, option, setup_logging, tls_options, tls_settings
from kubenetmon.cli.query import settings_from_options, store_options
from kubenetmon.errors import KubenetmonError, SettingsError
from kubenetmon.server.aggregate import FlushPolicy
from kubenetmon.server.attribution.settings import RFC1918_AND_ULA, AttributionSettings, PeeredRange
from kubenetmon.server.cloud.providers import DEFAULT_URLS, Provider
from kubenetmon.server.cloud.refresh import RefreshSettings
from kubenetmon.server.daemon import GC_THRESHOLDS, ServerDaemon
from kubenetmon.server.flusher import FlusherSettings
from kubenetmon.server.ingest import IngestSettings
from kubenetmon.server.inventory.cluster import KubeInventorySettings
from kubenetmon.server.inventory.index import ClusterIdentity
from kubenetmon.server.inventory.kube import Credentials
from kubenetmon.server.settings import AgentIdentityPolicy, ServerSettings
from kubenetmon.transport.service import ServiceSettings


def parse_peered(text: str) -> PeeredRange:
    """CIDR=REGION[/ZONE][@CLOUD], e.g. 10.20.0.0/16=us-east-1 or 10.30.1.0/24=eu-west-1/eu-west-1a@aws."""
    cidr, equals, where = text.partition("=")
    where, _, cloud = where.partition("@")
    region, _, zone = where.partition("/")
    if not equals or not cidr or not region:
        raise SettingsError(f"--peered-cidr {text!r}: expected CIDR=REGION[/ZONE][@CLOUD]")
    return PeeredRange(cidr=cidr, region=region, zone=zone, cloud=cloud)


def parse_urls(pairs: tuple[str, ...]) -> dict[Provider, str]:
    """PROVIDER=URL overrides on top of the vendors' URLs; PROVIDER= (empty) turns that refresh off."""
    urls = dict(DEFAULT_URLS)
    for pair in pairs:
        name, equals, url = pair.partition("=")
        try:
            provider = Provider(name)
        except ValueError:
            raise SettingsError(
                f"--cloud-ranges-url {pair!r}: provider must be one of {', '.join(p.value for p in Provider)}"
            ) from None
        if not equals:
            raise SettingsError(f"--cloud-ranges-url {pair!r}: expected PROVIDER=URL")
        urls[provider] = url
    return urls


@click.command(help="Receive agent batches, attribute them and store them in ClickHouse.")
@option("--listen", default="[::]:8884", show_default=True, help="gRPC address agents connect to.")
@tls_options
@option(
    "--agent-namespace",
    multiple=True,
    help="Namespace whose pods' SPIFFE certificates may report for the node they run on (repeatable).",
)
@option("--trust-domain", default="kubenetmon", show_default=True, help="SPIFFE trust domain of agent pods.")
@option("--max-batch-bytes", type=int, default=16 * 1024 * 1024, show_default=True, help="Largest batch.")
@option("--max-records-per-batch", type=int, default=65536, show_default=True, help="Most records per batch.")
@option(
    "--max-stream-age",
    type=float,
    default=300.0,
    show_default=True,
    help="Seconds after which an agent stream ends and reconnects (spreads agents over replicas).",
)
@option(
    "--metrics-host", default="0.0.0.0", show_default=True, help="Address for /metrics, /healthz, /readyz."
)
@option("--metrics-port", type=int, default=8883, show_default=True, help="Port for them; 0 = off.")
@store_options
@option(
    "--wal-dir",
    type=click.Path(path_type=Path),
    default=Path("/var/lib/kubenetmon-wal"),
    show_default=True,
    help="Durable buffer between acknowledgement and insert (keep it across restarts).",
)
@option("--wal-max-bytes", type=int, default=1024**3, show_default=True, help="Bound of that buffer.")
@option(
    "--flush-rows", type=int, default=200_000, show_default=True, help="Aggregated rows per insert, at most."
)
@option(
    "--flush-seconds", type=float, default=10.0, show_default=True, help="Oldest pending row's age to insert."
)
@option("--environment", default="", help="Copied into every row, e.g. production.")
@option("--cluster", default="", help="This cluster's name (localCluster).")
@option("--cloud", default="", help="This cluster's cloud (aws, gcp, azure), when nodes do not say.")
@option("--region", default="", help="This cluster's region, when nodes do not say; judges cloud ranges.")
@option(
    "--private-cidr",
    multiple=True,
    help="VPC/private range (repeatable; replaces the default RFC 1918 + fc00::/7), e.g. 100.64.0.0/10.",
)
@option(
    "--peered-cidr", multiple=True, help="Private range elsewhere: CIDR=REGION[/ZONE][@CLOUD] (repeatable)."
)
@option("--bucket-seconds", type=int, default=60, show_default=True, help="Time bucket of stored rows.")
@option(
    "--kubernetes/--no-kubernetes",
    default=True,
    show_default=True,
    help="Watch the Kubernetes API (in-cluster or --kubeconfig); off needs --inventory.",
)
@option(
    "--kubeconfig", type=click.Path(dir_okay=False), default=None, help="Kubeconfig instead of in-cluster."
)
@option("--kube-context", default=None, help="Context of the kubeconfig to use.")
@option(
    "--pod-grace-seconds",
    type=float,
    default=300.0,
    show_default=True,
    help="Deleted pods, nodes and Services stay resolvable this long (late conntrack entries).",
)
@option("--inventory-timeout", type=float, default=300.0, show_default=True, help="Wait for the first sync.")
@option("--inventory", type=click.Path(path_type=Path), default=None, help="Static inventory YAML file.")
@option(
    "--inventory-reload-seconds", type=float, default=5.0, show_default=True, help="How often it is re-read."
)
@option(
    "--cloud-ranges-refresh",
    type=float,
    default=6 * 3600.0,
    show_default=True,
    help="Seconds between downloads of the vendors' range files; 0 keeps the bundled/cached copy.",
)
@option("--cloud-ranges-url", multiple=True, help="PROVIDER=URL (aws, gcp, google, azure); empty URL = off.")
@option(
    "--cloud-ranges-cache-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Keep downloaded range files here; they are used at the next start.",
)
@option(
    "--shutdown-grace",
    type=float,
    default=20.0,
    show_default=True,
    help="Seconds to finish open batches and store the buffer on SIGTERM.",
)
@logging_options
def command(  # noqa: PLR0917 - one parameter per flag is how click calls it
    listen: str,
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_ca: Path | None,
    insecure: bool,
    agent_namespace: tuple[str, ...],
    trust_domain: str,
    max_batch_bytes: int,
    max_records_per_batch: int,
    max_stream_age: float,
    metrics_host: str,
    metrics_port: int,
    store_dsn: str,
    store_password_file: str | None,
    wal_dir: Path,
    wal_max_bytes: int,
    flush_rows: int,
    flush_seconds: float,
    environment: str,
    cluster: str,
    cloud: str,
    region: str,
    private_cidr: tuple[str, ...],
    peered_cidr: tuple[str, ...],
    bucket_seconds: int,
    kubernetes: bool,
    kubeconfig: str | None,
    kube_context: str | None,
    pod_grace_seconds: float,
    inventory_timeout: float,
    inventory: Path | None,
    inventory_reload_seconds: float,
    cloud_ranges_refresh: float,
    cloud_ranges_url: tuple[str, ...],
    cloud_ranges_cache_dir: Path | None,
    shutdown_grace: float,
    log_level: str,
    log_format: str,
) -> None:
    setup_logging(log_level, log_format)
    identity = ClusterIdentity(cluster=cluster, cloud=cloud, region=region)
    try:
        settings = ServerSettings(
            service=ServiceSettings(
                listen=listen,
                tls=tls_settings(tls_cert, tls_key, tls_ca, insecure),
                max_batch_bytes=max_batch_bytes,
                max_records_per_batch=max_records_per_batch,
                max_stream_age=max_stream_age,
            ),
            ingest=IngestSettings(directory=wal_dir, max_bytes=wal_max_bytes),
            store=settings_from_options(store_dsn, store_password_file),
            attribution=AttributionSettings(
                environment=environment,
                cluster=cluster,
                cloud=cloud,
                region=region,
                bucket_seconds=bucket_seconds,
                private_ranges=private_cidr or RFC1918_AND_ULA,
                peered_ranges=tuple(parse_peered(p) for p in peered_cidr),
            ),
            flusher=FlusherSettings(
                policy=FlushPolicy(max_keys=flush_rows, max_age_seconds=flush_seconds),
                max_records_per_batch=max_records_per_batch,
            ),
            kubernetes=KubeInventorySettings(
                credentials=Credentials(kubeconfig=kubeconfig, context=kube_context),
                identity=identity,
                deletion_grace=pod_grace_seconds,
            )
            if kubernetes
            else None,
            static_inventory=inventory,
            static_reload_seconds=inventory_reload_seconds,
            cloud_ranges=RefreshSettings(
                urls=parse_urls(cloud_ranges_url),
                interval_seconds=cloud_ranges_refresh,
                cache_dir=cloud_ranges_cache_dir,
            ),
            agents=AgentIdentityPolicy(trust_domain=trust_domain, namespaces=agent_namespace),
            metrics_host=metrics_host,
            metrics_port=metrics_port,
            inventory_timeout=inventory_timeout,
            shutdown_grace=shutdown_grace,
        ).validated()
    except (SettingsError, ValueError) as exc:
        raise click.UsageError(str(exc)) from exc
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        asyncio.run(ServerDaemon(settings, freeze_heap=True).run())
    except KubenetmonError as exc:
        raise click.ClickException(str(exc)) from exc
