"""The informer against a scripted API server: the edge cases a real one will not produce on demand.

The same scenarios (restart, 410 relist, RBAC) also run against the real kube-apiserver in
test_apiserver.py; here each one is forced exactly: an ERROR 410 in mid-stream, a garbage line,
a stream that goes silent, 429 with Retry-After, a continue token that expires between pages.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kubenetmon.errors import InventoryError
from kubenetmon.server.inventory import metrics
from kubenetmon.server.inventory.cluster import KubeInventory, KubeInventorySettings
from kubenetmon.server.inventory.kube import PODS, Forbidden
from kubenetmon.server.inventory.model import Pod
from kubenetmon.server.inventory.parse import parse_pod
from kubenetmon.server.inventory.watch import (
    Deleted,
    Event,
    Informer,
    Listed,
    Upserted,
    WatchSettings,
    backoff_delay,
)
from tests.server.inventory import manifests
from tests.server.inventory.canned import CannedApi, ListReply, WatchReply, bookmark, event, gone

PATH = PODS.path


def pod(name: str, rv: str, uid: str | None = None, **kwargs: Any) -> dict[str, Any]:
    raw = manifests.pod(name, uid=uid or f"uid-{name}", **kwargs)
    raw["metadata"]["resourceVersion"] = rv
    return raw


class Sleeps:
    """Records backoff delays instead of sleeping them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
async def api() -> AsyncIterator[CannedApi]:
    async with CannedApi().serve() as server:
        yield server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def informer(api: CannedApi, sleeps: Sleeps) -> AsyncIterator[Informer[Pod]]:
    client = api.client()
    settings = WatchSettings(page_size=2, watch_timeout=30, read_timeout=0.5)
    yield Informer(client, PODS, parse_pod, settings, rand=lambda: 0.5, sleep=sleeps)
    await client.aclose()


async def take(informer: Informer[Pod], count: int) -> list[Event[Pod]]:
    """The next `count` events, failing the test if they do not come within a few seconds."""
    stream = informer.events()
    events: list[Event[Pod]] = []
    async with asyncio.timeout(10):
        while len(events) < count:
            events.append(await anext(stream))
    await stream.aclose()
    return events


def names(events: list[Event[Pod]]) -> list[str]:
    """Events in a compact form: +name for upserts, -uid for deletes, 'listed'/'relisted'."""
    out = []
    for e in events:
        if isinstance(e, Upserted):
            out.append(f"+{e.obj.name}@{e.obj.phase}")
        elif isinstance(e, Deleted):
            out.append(f"-{e.uid}")
        elif isinstance(e, Listed):
            out.append("relisted" if e.relist else "listed")
    return out


async def test_the_list_is_paged_and_the_watch_starts_from_its_resource_version(
    api: CannedApi, informer: Informer[Pod]
) -> None:
    api.lists[PATH].extend(
        [
            ListReply([pod("a", "5"), pod("b", "6")], resource_version="9", continue_token="page-2"),
            ListReply([pod("c", "7")], resource_version="9"),
        ]
    )
    api.watches[PATH].append(WatchReply([event("ADDED", pod("d", "10"))], hang=True))
    events = await take(informer, 5)
    assert names(events) == ["+a@Running", "+b@Running", "+c@Running", "listed", "+d@Running"]
    lists = api.requests_to(PATH, watch=False)
    assert [r.query.get("continue") for r in lists] == [None, "page-2"]
    assert all(r.query["limit"] == "2" for r in lists)
    (watch,) = api.requests_to(PATH, watch=True)
    assert watch.query["resourceVersion"] == "9"
    assert watch.query["allowWatchBookmarks"] == "true"
    assert watch.query["timeoutSeconds"] == "30"
    assert informer.status.listed and informer.status.resource_version == "10"


async def test_an_error_410_in_mid_stream_relists_and_diffs_against_what_was_delivered(
    api: CannedApi, informer: Informer[Pod]
) -> None:
    api.lists[PATH].append(ListReply([pod("a", "5"), pod("b", "6")], resource_version="10"))
    api.watches[PATH].append(WatchReply([event("MODIFIED", pod("a", "11", phase="Succeeded")), gone()]))
    # Meanwhile: a is unchanged since its last event, b was deleted, c was created.
    api.lists[PATH].append(
        ListReply([pod("a", "11", phase="Succeeded"), pod("c", "12")], resource_version="13")
    )
    api.watches[PATH].append(WatchReply([event("ADDED", pod("d", "14"))], hang=True))
    events = await take(informer, 8)
    assert names(events) == [
        "+a@Running",
        "+b@Running",
        "listed",
        "+a@Succeeded",
        "+c@Running",
        "-uid-b",
        "relisted",
        "+d@Running",
    ]
    watches = api.requests_to(PATH, watch=True)
    assert [w.query["resourceVersion"] for w in watches] == ["10", "13"]


async def test_an_http_410_when_starting_the_watch_relists(api: CannedApi, informer: Informer[Pod]) -> None:
    api.lists[PATH].append(ListReply([pod("a", "5")], resource_version="10"))
    api.watches[PATH].append(WatchReply(status=410, message="too old resource version"))
    api.lists[PATH].append(ListReply([pod("a", "5")], resource_version="20"))
    events = await take(informer, 3)
    assert names(events) == ["+a@Running", "listed", "relisted"]
    assert informer.status.lists == 2


async def test_repeated_410s_right_after_relisting_back_off_instead_of_hammering_the_server(
    api: CannedApi, informer: Informer[Pod], sleeps: Sleeps
) -> None:
    for version in ("10", "20", "30"):
        api.lists[PATH].append(ListReply([pod("a", "5")], resource_version=version))
        api.watches[PATH].append(WatchReply([gone()]))
    api.lists[PATH].append(ListReply([pod("a", "5")], resource_version="40"))
    api.watches[PATH].append(WatchReply([event("ADDED", pod("b", "41"))], hang=True))
    events = await take(informer, 6)
    assert names(events) == ["+a@Running", "listed", "relisted", "relisted", "relisted", "+b@Running"]
    assert len(sleeps.delays) == 2  # the first 410 relists at once, the next ones wait
    assert sleeps.delays[1] > sleeps.delays[0]


async def test_a_garbage_line_reconnects_from_the_last_good_resource_version_without_relisting(
    api: CannedApi, informer: Informer[Pod], sleeps: Sleeps
) -> None:
    api.lists[PATH].append(ListReply([pod("a", "5")], resource_version="10"))
    api.watches[PATH].append(WatchReply([event("ADDED", pod("b", "11")), b"<html>proxy error</html>"]))
    api.watches[PATH].append(WatchReply([event("ADDED", pod("c", "12"))], hang=True))
    events = await take(informer, 4)
    assert names(events) == ["+a@Running", "listed", "+b@Running", "+c@Running"]
    assert [w.query["resourceVersion"] for w in api.requests_to(PATH, watch=True)] == ["10", "11"]
    assert len(api.requests_to(PATH, watch=False)) == 1
    assert len(sleeps.delays) == 1


async def test_a_silent_stream_is_replaced_at_once_after_the_read_timeout(
    api: CannedApi, informer: Informer[Pod], sleeps: Sleeps
) -> None:
    api.lists[PATH].append(ListReply([pod("a", "5")], resource_version="10"))
    api.watches[PATH].append(WatchReply(hang=True))
    api.watches[PATH].append(WatchReply([event("ADDED", pod("b", "11"))], hang=True))
    events = await take(informer, 3)
    assert names(events) == ["+a@Running", "listed", "+b@Running"]
    assert [w.query["resourceVersion"] for w in api.requests_to(PATH, watch=True)] == ["10", "10"]
    assert sleeps.delays == []


async def test_a_bookmark_advances_the_resource_version_for_the_next_watch(
    api: CannedApi, informer: Informer[Pod], sleeps: Sleeps
) -> None:
    api.lists[PATH].append(ListReply([pod("a", "5")], resource_version="10"))
    api.watches[PATH].append(WatchReply([bookmark("50")]))  # then the server's timeoutSeconds ends it
    api.watches[PATH].append(WatchReply([event("ADDED", pod("b", "51"))], hang=True))
    events = await take(informer, 3)
    assert names(events) == ["+a@Running", "listed", "+b@Running"]
    assert [w.query["resourceVersion"] for w in api.requests_to(PATH, watch=True)] == ["10", "50"]
    assert sleeps.delays == []


async def test_a_deletion_is_delivered_once_and_an_unknown_one_not_at_all(
    api: CannedApi, informer: Informer[Pod]
) -> None:
    api.lists[PATH].append(ListReply([pod("a", "5")], resource_version="10"))
    api.watches[PATH].append(
        WatchReply(
            [
                event("DELETED", pod("zz", "11")),
                event("DELETED", pod("a", "12")),
                event("ADDED", pod("b", "13")),
            ],
            hang=True,
        )
    )
    events = await take(informer, 4)
    assert names(events) == ["+a@Running", "listed", "-uid-a", "+b@Running"]


async def test_an_expired_continue_token_restarts_the_list_after_a_pause(
    api: CannedApi, informer: Informer[Pod], sleeps: Sleeps
) -> None:
    api.lists[PATH].extend(
        [
            ListReply([pod("a", "5"), pod("b", "6")], resource_version="9", continue_token="stale"),
            ListReply(status=410, message="The provided continue parameter is too old"),
            ListReply([pod("a", "5"), pod("b", "6")], resource_version="20", continue_token="fresh"),
            ListReply([pod("c", "7")], resource_version="20"),
        ]
    )
    events = await take(informer, 4)
    # a and b were delivered before the token expired; the restarted list does not repeat them.
    assert names(events) == ["+a@Running", "+b@Running", "+c@Running", "listed"]
    assert len(sleeps.delays) == 1


async def test_throttling_waits_at_least_as_long_as_retry_after_says(
    api: CannedApi, informer: Informer[Pod], sleeps: Sleeps
) -> None:
    api.lists[PATH].append(ListReply(status=429, message="slow down", headers={"Retry-After": "7"}))
    api.lists[PATH].append(ListReply(status=503, message="etcd leader changed"))
    api.lists[PATH].append(ListReply([pod("a", "5")], resource_version="10"))
    events = await take(informer, 2)
    assert names(events) == ["+a@Running", "listed"]
    assert sleeps.delays[0] == 7
    assert sleeps.delays[1] == backoff_delay(1, 0.5, 30.0, lambda: 0.5)


def test_backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half() -> None:
    assert [backoff_delay(n, 1.0, 8.0, lambda: 0.0) for n in range(6)] == [0.5, 1, 2, 4, 4, 4]
    assert [backoff_delay(n, 1.0, 8.0, lambda: 1.0) for n in range(6)] == [1, 2, 4, 8, 8, 8]


async def test_a_malformed_object_is_skipped_counted_and_the_rest_delivered(
    api: CannedApi, informer: Informer[Pod]
) -> None:
    broken = pod("broken", "6")
    broken["status"]["podIPs"] = [{"ip": "not-an-address"}]
    before = metrics.MALFORMED.labels("pods")._value.get()
    api.lists[PATH].append(ListReply([pod("a", "5"), broken, pod("c", "7")], resource_version="10"))
    events = await take(informer, 3)
    assert names(events) == ["+a@Running", "+c@Running", "listed"]
    assert metrics.MALFORMED.labels("pods")._value.get() == before + 1


async def test_a_malformed_update_keeps_the_last_good_version(
    api: CannedApi, informer: Informer[Pod]
) -> None:
    broken = pod("a", "11")
    broken["status"]["startTime"] = "not a time"
    api.lists[PATH].append(ListReply([pod("a", "5")], resource_version="10"))
    api.watches[PATH].append(WatchReply([event("MODIFIED", broken), gone()]))
    api.lists[PATH].append(ListReply([broken], resource_version="12"))
    events = await take(informer, 3)
    assert names(events) == ["+a@Running", "listed", "relisted"]  # no deletion of a


async def test_forbidden_names_the_missing_permission_and_keeps_retrying(
    api: CannedApi, informer: Informer[Pod], sleeps: Sleeps
) -> None:
    message = 'pods is forbidden: User "system:serviceaccount:x:y" cannot list resource "pods"'
    api.lists[PATH].extend([ListReply(status=403, message=message), ListReply(status=403, message=message)])
    api.lists[PATH].append(ListReply([pod("a", "5")], resource_version="10"))
    stream = informer.events()
    async with asyncio.timeout(10):
        first = await anext(stream)
    await stream.aclose()
    assert names([first]) == ["+a@Running"]
    assert len(sleeps.delays) == 2
    assert sleeps.delays[1] > sleeps.delays[0]


async def test_a_failing_watch_is_timed_from_its_first_failure_until_the_next_success(
    api: CannedApi, sleeps: Sleeps
) -> None:
    api.lists[PATH].append(ListReply([pod("a", "5")], resource_version="10"))
    api.watches[PATH].extend([WatchReply(status=503), WatchReply(status=503)])
    api.watches[PATH].append(WatchReply([event("ADDED", pod("b", "11"))], hang=True))
    client = api.client()
    seen_while_failing: list[float | None] = []

    async def sleep(seconds: float) -> None:
        seen_while_failing.append(informer.status.failing_since)
        await sleeps(seconds)

    informer = Informer(client, PODS, parse_pod, WatchSettings(read_timeout=0.5), sleep=sleep)
    try:
        events = await take(informer, 3)
    finally:
        await client.aclose()
    assert names(events) == ["+a@Running", "listed", "+b@Running"]
    first, second = seen_while_failing
    assert first is not None and first == second  # the clock starts at the first failure, not each one
    assert informer.status.failing_since is None
    assert informer.status.failing_for(first + 100) == 0.0


async def test_forbidden_errors_read_as_an_rbac_instruction(api: CannedApi) -> None:
    message = 'pods is forbidden: User "system:serviceaccount:x:y" cannot list resource "pods"'
    api.lists[PATH].append(ListReply(status=403, message=message))
    client = api.client()
    try:
        with pytest.raises(Forbidden) as raised:
            await client.list_page(PODS, {"limit": "1"}, 5)
    finally:
        await client.aclose()
    text = str(raised.value)
    assert 'verb "list" on pods in API group "" (core)' in text
    assert message in text


async def test_an_inventory_that_cannot_list_says_why_when_readiness_times_out(api: CannedApi) -> None:
    message = 'endpointslices.discovery.k8s.io is forbidden: cannot list resource "endpointslices"'
    for _ in range(20):
        api.lists["/apis/discovery.k8s.io/v1/endpointslices"].append(ListReply(status=403, message=message))
    client = api.client()
    inventory = KubeInventory(KubeInventorySettings(watch=WatchSettings(backoff_initial=0.05)), client=client)
    await inventory.start()
    try:
        with pytest.raises(InventoryError, match=r"endpointslices: list endpointslices: forbidden \(403\)"):
            await inventory.wait_ready(1.0)
        assert not inventory.ready
        assert inventory.status()["pods"].listed
    finally:
        await inventory.stop()
        await client.aclose()


async def test_the_inventory_is_ready_once_every_kind_has_listed(api: CannedApi) -> None:
    api.lists[PATH].append(ListReply([pod("a", "5", ips=("198.18.1.10",))], resource_version="10"))
    node = manifests.node("node-a", internal=("198.18.0.1",), zone="zone-a")
    api.lists["/api/v1/nodes"].append(ListReply([node], resource_version="10"))
    client = api.client()
    inventory = KubeInventory(client=client)
    await inventory.start()
    try:
        await inventory.wait_ready(5)
        assert inventory.ready
        endpoint = inventory.index.endpoint_at("198.18.1.10", 0)
        assert endpoint is not None and (endpoint.pod, endpoint.zone) == ("a", "zone-a")
        assert {task.get_name() for task in inventory.tasks} == {
            "inventory pods",
            "inventory nodes",
            "inventory services",
            "inventory endpointslices",
            "inventory pruner",
        }
    finally:
        await inventory.stop()
        await client.aclose()
    assert inventory.tasks == ()


def test_events_are_plain_values() -> None:
    raw = pod("a", "5")
    assert Upserted(parse_pod(raw)) == Upserted(parse_pod(copy.deepcopy(raw)))
