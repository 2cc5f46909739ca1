"""The rule that says which pod held a reused address at a given time."""

from __future__ import annotations

import math

from kubenetmon.records import Endpoint, EndpointKind
from kubenetmon.server.inventory.history import Holding, holder_at

OLD = Endpoint(EndpointKind.POD, pod="old")
NEW = Endpoint(EndpointKind.POD, pod="new")
JOB = Endpoint(EndpointKind.POD, pod="job")


def test_before_the_reuse_the_old_pod_answers_and_after_it_the_new_one() -> None:
    holdings = [Holding("o", OLD, since=100, until=200), Holding("n", NEW, since=210)]
    assert holder_at(holdings, 150) is OLD
    assert holder_at(holdings, 210) is NEW
    assert holder_at(holdings, 10_000) is NEW


def test_between_deletion_and_reuse_the_deleted_pod_still_answers() -> None:
    holdings = [Holding("o", OLD, since=100, until=200), Holding("n", NEW, since=210)]
    assert holder_at(holdings, 205) is OLD


def test_when_tenures_overlap_the_newer_pod_answers() -> None:
    # The new pod started before the old one's deletion was observed.
    holdings = [Holding("o", OLD, since=100, until=200), Holding("n", NEW, since=190)]
    assert holder_at(holdings, 195) is NEW


def test_a_completed_pod_never_shadows_a_running_one_even_if_it_started_later() -> None:
    holdings = [Holding("n", NEW, since=100), Holding("j", JOB, since=150, until=300, completed=True)]
    assert holder_at(holdings, 200) is NEW


def test_a_completed_pod_answers_for_its_own_run_before_the_address_was_reused() -> None:
    holdings = [Holding("j", JOB, since=100, until=150, completed=True), Holding("n", NEW, since=400)]
    assert holder_at(holdings, 120) is JOB
    assert holder_at(holdings, 300) is JOB  # nobody else had it yet: late entries of the job
    assert holder_at(holdings, 400) is NEW


def test_a_deleted_pod_that_took_the_address_after_a_job_completed_answers_its_late_entries() -> None:
    holdings = [
        Holding("j", JOB, since=100, until=150, completed=True),
        Holding("o", OLD, since=200, until=300),
    ]
    assert holder_at(holdings, 350) is OLD


def test_a_time_before_every_tenure_goes_to_the_earliest_one() -> None:
    holdings = [Holding("n", NEW, since=500), Holding("o", OLD, since=100, until=200)]
    assert holder_at(holdings, 50) is OLD


def test_order_of_holdings_does_not_matter() -> None:
    a = [Holding("o", OLD, since=100, until=200), Holding("n", NEW, since=210, until=math.inf)]
    for when in (50, 150, 205, 210, 999):
        assert holder_at(a, when) is holder_at(list(reversed(a)), when)
