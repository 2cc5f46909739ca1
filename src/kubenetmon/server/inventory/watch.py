"""An informer: list, then watch from the list's resourceVersion, forever, as a stream of events.

`Informer.events()` yields `Upserted(obj)`, `Deleted(uid)` and `Listed(...)`:

1. List in pages (`limit`, `continue`). Every object whose resourceVersion differs from what the
   informer last delivered is yielded as `Upserted` as its page arrives; after the last page, every
   previously delivered uid the list no longer contains is yielded as `Deleted`, then `Listed`. The
   first `Listed` is what "ready" means for that kind.
2. Watch from the list's resourceVersion with bookmarks and a server-side `timeoutSeconds`. ADDED and
   MODIFIED become `Upserted`, DELETED becomes `Deleted`, BOOKMARK only advances the resourceVersion.
   When the server ends the watch, reconnect from the last resourceVersion seen.
3. On 410 Gone (the HTTP status or an ERROR event), list again: step 1's diff turns whatever was missed
   into synthetic upserts and deletes, so consumers never see duplicates or miss a deletion.
4. On any other failure (connection, 429, 5xx, 401, 403, a garbage line), wait with exponential
   backoff and jitter (honouring Retry-After), then resume the watch from the last resourceVersion,
   or the list if it had not completed. A watch silent for the read timeout is reconnected at once:
   it is a dead connection or a quiet collection, and the next connect tells which.

Objects are identified by metadata.uid, so a pod deleted and recreated under the same name during a
gap is one delete and one add. A malformed object is skipped and counted; the stream goes on.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from kubenetmon.server.inventory import metrics
from kubenetmon.server.inventory.kube import (
    ApiError,
    ApiResource,
    Forbidden,
    KubeClient,
    MalformedResponse,
    ResourceGone,
    Unauthorized,
    WatchStalled,
    status_error,
)
from kubenetmon.server.inventory.parse import MalformedObject

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """How an informer talks to the API server."""

    page_size: int = 500
    """Objects per list page: 500 keeps a page of pods around 5 MB of JSON."""
    watch_timeout: int = 300
    """Server-side timeoutSeconds of one watch request; the informer then reconnects from where it was."""
    read_timeout: float = 90.0
    """Client-side silence after which the connection is presumed dead and replaced. The API server
    sends a bookmark about once a minute on a quiet watch (measured on 1.37: 60 s apart), so 90 s
    leaves room for one late bookmark; it sends none for a collection without any event since it
    started, so such watches are simply reconnected every 90 s."""
    list_timeout: float = 120.0
    """Budget for one list page."""
    backoff_initial: float = 0.5
    backoff_max: float = 30.0


@dataclass(frozen=True, slots=True)
class Upserted(Generic[T]):
    """An object was added or changed (or the informer learnt of it by relisting)."""

    obj: T


@dataclass(frozen=True, slots=True)
class Deleted:
    """The object with this uid is gone."""

    uid: str


@dataclass(frozen=True, slots=True)
class Listed:
    """A full list has been delivered; the events before it describe the whole collection."""

    objects: int
    seconds: float
    relist: bool


Event = Upserted[T] | Deleted | Listed


@dataclass(slots=True)
class InformerStatus:
    """What an informer has done so far, for readiness and for operators."""

    listed: bool = False
    resource_version: str = ""
    objects: int = 0
    lists: int = 0
    last_error: str = ""
    """The latest failure's message; empty once a list or watch succeeds again."""
    failing_since: float | None = None
    """`time.monotonic()` of the first failure since the last success; None while lists and watches work.
    A kind that listed once stays "ready" while its watch fails (attributing with a slightly old view
    beats refusing agents), so this is how an operator sees that the view is ageing."""

    def failing_for(self, now: float) -> float:
        """Seconds list/watch has been failing without a success in between; 0 while it works."""
        return 0.0 if self.failing_since is None else now - self.failing_since


def backoff_delay(attempt: int, initial: float, maximum: float, rand: Callable[[], float]) -> float:
    """Exponential backoff with equal jitter: half the step fixed, half random, capped at `maximum`."""
    # The exponent is bounded: 2.0**1024 overflows, which days of failures would reach.
    step = min(maximum, initial * 2.0 ** min(attempt, 64))
    return step / 2 + rand() * step / 2


class Informer(Generic[T]):
    """List+watch of one resource across the cluster, parsed into the slim model by `parse`."""

    def __init__(
        self,
        client: KubeClient,
        resource: ApiResource,
        parse: Callable[[Mapping[str, Any]], T],
        settings: WatchSettings | None = None,
        *,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.resource = resource
        self.settings = settings or WatchSettings()
        self._status = InformerStatus()
        self._parse = parse
        self._rand = rand
        self._sleep = sleep
        self._versions: dict[str, str] = {}
        """uid -> resourceVersion of every object delivered and not deleted."""
        self._kind = resource.plural
        self._event_counters = {
            kind: metrics.EVENTS.labels(self._kind, kind)
            for kind in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK")
        }
        metrics.OBJECTS.labels(self._kind).set_function(lambda: len(self._versions))
        metrics.FAILING.labels(self._kind).set_function(lambda: self._status.failing_for(time.monotonic()))

    @property
    def status(self) -> InformerStatus:
        """What the informer has done so far (objects counted now)."""
        self._status.objects = len(self._versions)
        return self._status

    async def events(self) -> AsyncGenerator[Event[T], None]:
        """The event stream; it ends only when the consumer stops iterating or the task is cancelled."""
        attempt = 0  # failures since the last success, for the backoff
        gone = 0  # 410s since a watch last delivered something: a server compacting faster than we list
        must_list = True
        while True:
            try:
                if must_list:
                    async with aclosing(self._list()) as listing:
                        async for event in listing:
                            yield event
                    must_list = False
                    attempt = 0
                async with aclosing(self._watch()) as watching:
                    async for event in watching:
                        attempt = gone = 0
                        yield event
                gone = 0
                log.debug("%s: watch ended by the server; resuming from %s", self._kind, self._rv)
            except WatchStalled as exc:
                # Not a failure to back off from: the API server sends no bookmarks on a collection
                # whose cache has seen no event since it started, so quiet watches go silent.
                metrics.ERRORS.labels(self._kind, type(exc).__name__).inc()
                log.info("%s: %s; reconnecting from resourceVersion %s", self._kind, exc, self._rv)
            except ResourceGone as exc:
                self._failed(exc)
                if must_list or gone:  # the list itself outlived the server's history: pause first
                    await self._sleep(self._retry_in(exc, max(attempt, gone)))
                    attempt += 1
                else:
                    log.info("%s: resourceVersion %s expired (410 Gone); relisting", self._kind, self._rv)
                gone += 1
                must_list = True
            except ApiError as exc:
                self._failed(exc)
                await self._sleep(self._retry_in(exc, attempt))
                attempt += 1

    def _failed(self, exc: ApiError) -> None:
        metrics.ERRORS.labels(self._kind, type(exc).__name__).inc()
        self._status.last_error = str(exc)
        if self._status.failing_since is None:
            self._status.failing_since = time.monotonic()

    def _succeeded(self) -> None:
        self._status.last_error, self._status.failing_since = "", None

    def snapshot(self) -> dict[str, str]:
        """uid -> resourceVersion of every object delivered and not deleted: the informer's view of
        the collection, comparable with a fresh list."""
        return dict(self._versions)

    @property
    def _rv(self) -> str:
        return self._status.resource_version

    def _retry_in(self, exc: ApiError, attempt: int) -> float:
        settings = self.settings
        delay = max(
            exc.retry_after,
            backoff_delay(attempt, settings.backoff_initial, settings.backoff_max, self._rand),
        )
        level = logging.ERROR if isinstance(exc, Forbidden | Unauthorized) else logging.WARNING
        log.log(level, "%s: %s; retrying in %.1f s", self._kind, exc, delay)
        return delay

    async def _list(self) -> AsyncGenerator[Event[T], None]:
        reason = "relist" if self._status.listed else "initial"
        started = time.monotonic()
        seen: set[str] = set()
        params = {"limit": str(self.settings.page_size)}
        pages = 0
        while True:
            body = await self.client.list_page(self.resource, params, self.settings.list_timeout)
            pages += 1
            with _gc_paused():
                page = _decode(body, f"list {self._kind}")
                events = [self._upsert(item, seen) for item in page.get("items") or ()]
            for event in events:
                if event is not None:
                    yield event
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                break
            params["continue"] = token
        for uid in [uid for uid in self._versions if uid not in seen]:
            del self._versions[uid]
            yield Deleted(uid)
        seconds = time.monotonic() - started
        self._status.resource_version = str(meta.get("resourceVersion") or "")
        self._record_list(reason)
        log.info(
            "%s: listed %d objects in %d pages in %.1f s (resourceVersion %s, %s)",
            self._kind,
            len(seen),
            pages,
            seconds,
            self._rv,
            reason,
        )
        yield Listed(objects=len(seen), seconds=seconds, relist=reason != "initial")

    def _record_list(self, reason: str) -> None:
        status = self._status
        status.listed, status.lists = True, status.lists + 1
        self._succeeded()
        metrics.LISTS.labels(self._kind, reason).inc()
        metrics.LISTED.labels(self._kind).set(1)

    async def _watch(self) -> AsyncGenerator[Event[T], None]:
        settings = self.settings
        params = {
            "resourceVersion": self._rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(settings.watch_timeout),
        }
        lines = self.client.watch(self.resource, params, settings.read_timeout)
        async with aclosing(lines):
            async for line in lines:
                event = self._apply(_decode(line, f"watch {self._kind}"))
                if event is not None:
                    yield event
        self._succeeded()

    def _apply(self, message: Mapping[str, Any]) -> Event[T] | None:
        kind = message.get("type")
        obj = message.get("object")
        if not isinstance(obj, dict):
            raise MalformedResponse(f"watch {self._kind}: event {kind!r} without an object")
        if kind == "ERROR":
            raise status_error(int(obj.get("code") or 0), obj, "watch", self.resource, self.client.host)
        counter = self._event_counters.get(str(kind))
        (counter or metrics.EVENTS.labels(self._kind, str(kind))).inc()
        meta = obj.get("metadata") or {}
        version = meta.get("resourceVersion")
        if not version:
            raise MalformedResponse(f"watch {self._kind}: {kind} event without metadata.resourceVersion")
        self._status.resource_version = version
        self._succeeded()
        if kind in ("ADDED", "MODIFIED"):
            return self._upsert(obj, None)
        if kind == "DELETED":
            uid = meta.get("uid")
            if uid in self._versions:
                del self._versions[uid]
                return Deleted(uid)
            return None
        if kind != "BOOKMARK":
            log.warning("%s: ignoring watch event of unknown type %r", self._kind, kind)
        return None

    def _upsert(self, obj: Mapping[str, Any], seen: set[str] | None) -> Upserted[T] | None:
        meta = obj.get("metadata") or {}
        uid, version = str(meta.get("uid") or ""), str(meta.get("resourceVersion") or "")
        if seen is not None and uid:
            seen.add(uid)
        if uid and self._versions.get(uid) == version:
            return None
        try:
            parsed = self._parse(obj)
        except MalformedObject as exc:
            metrics.MALFORMED.labels(self._kind).inc()
            log.warning(
                "%s: skipping %s/%s, keeping what was known of it: %s",
                self._kind,
                meta.get("namespace", ""),
                meta.get("name", "?"),
                exc,
            )
            return None
        self._versions[uid] = version
        return Upserted(parsed)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector while a list page is decoded and parsed.

    A page of 500 pods is ~100,000 new dicts and lists; each allocation burst triggers collections
    that also traverse everything the inventory already holds, which made decoding 3x slower than
    the JSON parse itself. The page's objects form no cycles (JSON cannot), so nothing is lost by
    deferring collection for the few tens of milliseconds a page takes.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _decode(data: bytes, what: str) -> dict[str, Any]:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedResponse(f"{what}: not JSON ({exc}): {data[:120]!r}") from exc
    if not isinstance(document, dict):
        raise MalformedResponse(f"{what}: expected a JSON object, got {type(document).__name__}")
    return document
