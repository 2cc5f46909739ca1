"""The live cluster inventory: four informers (pods, nodes, services, EndpointSlices) feeding one index.

    inventory = KubeInventory(
        KubeInventorySettings(
            credentials=Credentials(kubeconfig="/etc/kubenetmon/kubeconfig"),  # None: in-cluster
            identity=ClusterIdentity(cluster="prod-eu", cloud="aws", region="eu-west-1"),
        )
    )
    await inventory.start()
    await inventory.wait_ready(60)
    lookups = inventory.index            # EndpointLookup and ServiceLookup for attribution
    ...
    await inventory.stop()

Each informer runs as a named task ("inventory pods", ...), a fifth one prunes what the grace period
has expired. A task that dies unexpectedly is logged at once; `tasks` lets the server daemon supervise
them with its other root tasks.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kubenetmon.errors import InventoryError
from kubenetmon.server.inventory import metrics
from kubenetmon.server.inventory.index import ClusterIdentity, InventoryIndex
from kubenetmon.server.inventory.kube import (
    ENDPOINT_SLICES,
    NODES,
    PODS,
    SERVICES,
    ApiResource,
    Credentials,
    KubeClient,
)
from kubenetmon.server.inventory.parse import parse_endpoint_slice, parse_node, parse_pod, parse_service
from kubenetmon.server.inventory.watch import (
    Deleted,
    Informer,
    InformerStatus,
    Listed,
    Upserted,
    WatchSettings,
)

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KubeInventorySettings:
    """Everything the Kubernetes inventory needs to know; see each field."""

    credentials: Credentials = field(default_factory=Credentials)
    identity: ClusterIdentity = field(default_factory=ClusterIdentity)
    deletion_grace: float = 300.0
    """Seconds a deleted pod, node, Service or endpoint stays resolvable. Conntrack keeps closed TCP
    flows for up to 120 s (TIME_WAIT) and agents report every few seconds; 300 s covers both with room."""
    prune_interval: float = 10.0
    """How often expired entries are forgotten."""
    watch: WatchSettings = field(default_factory=WatchSettings)


class KubeInventory:
    """Lists and watches the cluster and keeps `index` current."""

    def __init__(
        self,
        settings: KubeInventorySettings | None = None,
        *,
        client: KubeClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or KubeInventorySettings()
        self.index = InventoryIndex(self.settings.identity, self.settings.deletion_grace, clock)
        self._client = client
        self._owns_client = client is None
        self._informers: dict[str, Informer[Any]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = asyncio.Event()

    @property
    def ready(self) -> bool:
        """True once every kind has completed its first full list."""
        return self._ready.is_set()

    @property
    def tasks(self) -> tuple[asyncio.Task[None], ...]:
        """The running root tasks, for a supervisor that waits on the first to end."""
        return tuple(self._tasks)

    def status(self) -> dict[str, InformerStatus]:
        """Per kind: listed yet, objects, lists so far, resourceVersion, the latest error."""
        return {kind: informer.status for kind, informer in self._informers.items()}

    def failing(self) -> list[str]:
        """Kinds whose list or watch fails right now, each as "pods: failing for 75 s: <last error>"."""
        now = time.monotonic()
        return [
            f"{kind}: failing for {status.failing_for(now):.0f} s: {status.last_error}"
            for kind, status in self.status().items()
            if status.failing_since is not None
        ]

    def known(self, kind: str) -> dict[str, str]:
        """uid -> resourceVersion of every object of `kind` ("pods", ...) the informer currently knows."""
        return self._informers[kind].snapshot()

    async def start(self) -> None:
        """Load credentials and start the informers; returns at once (see `wait_ready`)."""
        if self._client is None:
            self._client = await KubeClient.connect(self.settings.credentials)
        client = self._client
        log.info("inventory: watching the API server at %s", client.host)
        index = self.index
        node_parser = functools.partial(parse_node, default_cloud=self.settings.identity.cloud)
        self._spawn(client, PODS, parse_pod, index.upsert_pod, index.delete_pod)
        self._spawn(client, NODES, node_parser, index.upsert_node, index.delete_node)
        self._spawn(client, SERVICES, parse_service, index.upsert_service, index.delete_service)
        self._spawn(
            client,
            ENDPOINT_SLICES,
            parse_endpoint_slice,
            index.upsert_endpoint_slice,
            index.delete_endpoint_slice,
        )
        self._start_task(self._prune_forever(), "inventory pruner")

    async def wait_ready(self, timeout: float) -> None:  # noqa: ASYNC109 - a readiness budget, not a scope
        """Wait until every kind has listed; on timeout raise `InventoryError` with each kind's last error."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            waiting = [
                f"{kind}: {status.last_error or 'no answer yet'}"
                for kind, status in self.status().items()
                if not status.listed
            ]
            raise InventoryError(
                f"inventory not ready after {timeout:g} s; still listing: " + "; ".join(waiting)
            ) from None

    async def stop(self) -> None:
        """Cancel the tasks and close the HTTP session."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None

    def _spawn(
        self,
        client: KubeClient,
        resource: ApiResource,
        parse: Callable[[Mapping[str, Any]], T],
        upsert: Callable[[T], None],
        delete: Callable[[str], None],
    ) -> None:
        informer = Informer(client, resource, parse, self.settings.watch)
        self._informers[resource.plural] = informer
        self._start_task(self._consume(informer, upsert, delete), f"inventory {resource.plural}")

    async def _consume(
        self, informer: Informer[T], upsert: Callable[[T], None], delete: Callable[[str], None]
    ) -> None:
        async for event in informer.events():
            if isinstance(event, Upserted):
                upsert(event.obj)
            elif isinstance(event, Deleted):
                delete(event.uid)
            elif isinstance(event, Listed) and not event.relist:
                self._check_ready()

    def _check_ready(self) -> None:
        if all(informer.status.listed for informer in self._informers.values()):
            counts = self.index.counts()
            log.info(
                "inventory ready: %d pods, %d nodes, %d services, %d endpointslices",
                counts["pods"],
                counts["nodes"],
                counts["services"],
                counts["endpointslices"],
            )
            self._ready.set()

    async def _prune_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.prune_interval)
            forgotten = self.index.prune()
            if forgotten:
                metrics.PRUNED.inc(forgotten)
                log.debug("inventory: forgot %d expired entries", forgotten)

    def _start_task(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        task.add_done_callback(_report_exit)
        self._tasks.append(task)


def _report_exit(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("task %r failed: %s", task.get_name(), exc, exc_info=exc)
    else:
        log.error("task %r ended unexpectedly", task.get_name())
