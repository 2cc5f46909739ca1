"""DeltaTracker: counter sequences in, exact per-interval deltas and counted losses out."""

from __future__ import annotations

import pytest

from kubenetmon.agent.tracker import DeltaTracker
from kubenetmon.records import FlowRecord, LossReason, LossReport
from tests.conntrack.builders import CT_DELETE, Tuple, message, sighting

A = Tuple("198.18.1.10", "198.18.2.10", 40000, 80)
B = Tuple("fd00:db8:1::10", "fd00:db8:2::10", 40001, 443)
GRACE = 30.0


def dump(
    tracker: DeltaTracker, *flows: tuple[Tuple, int, tuple[int, int, int, int]], now: float = 0.0
) -> None:
    tracker.observe_dump([sighting(message(t, c, ct_id=i)) for t, i, c in flows], now)


def destroy(
    tracker: DeltaTracker, flow: Tuple, ct_id: int, counts: tuple[int, int, int, int], now: float = 0.0
):
    tracker.observe_destroys([sighting(message(flow, counts, ct_id=ct_id, msg_type=CT_DELETE))], now)


def deltas(tracker: DeltaTracker) -> tuple[list[tuple[int, int, int, int]], dict[LossReason, LossReport]]:
    records, losses = tracker.close_interval("node-a", 0.0, 5.0)
    return (
        [(r.orig_packets, r.orig_bytes, r.reply_packets, r.reply_bytes) for r in records],
        {loss.reason: loss for loss in losses},
    )


def started() -> DeltaTracker:
    """A tracker past its (empty) baseline dump."""
    tracker = DeltaTracker(GRACE)
    dump(tracker)
    tracker.end_baseline()
    deltas(tracker)
    return tracker


@pytest.mark.parametrize(
    ("sequence", "expected"),
    [
        # each dump's absolute counters -> each interval's reported delta (None = no record)
        ([(1, 100, 1, 60)], [(1, 100, 1, 60)]),
        ([(1, 100, 0, 0), (1, 100, 0, 0)], [(1, 100, 0, 0), None]),
        (
            [(1, 100, 0, 0), (3, 400, 2, 120), (4, 500, 2, 120)],
            [(1, 100, 0, 0), (2, 300, 2, 120), (1, 100, 0, 0)],
        ),
        ([(0, 0, 0, 0), (0, 0, 0, 0), (5, 5000, 0, 0)], [None, None, (5, 5000, 0, 0)]),
        ([(2**40, 2**50, 7, 9), (2**40 + 1, 2**50 + 1500, 7, 9)], [(2**40, 2**50, 7, 9), (1, 1500, 0, 0)]),
    ],
)
def test_each_interval_reports_current_minus_previous(sequence, expected) -> None:
    tracker = started()
    for counts, want in zip(sequence, expected, strict=True):
        dump(tracker, (A, 7, counts))
        records, _ = deltas(tracker)
        assert records == ([want] if want else [])


def test_flows_present_at_start_are_baselined_not_counted() -> None:
    tracker = DeltaTracker(GRACE)
    dump(tracker, (A, 1, (10, 1000, 5, 300)), (B, 2, (1, 80, 0, 0)))
    tracker.end_baseline()
    records, losses = deltas(tracker)
    assert records == []
    assert losses[LossReason.BASELINE_AT_START] == LossReport(LossReason.BASELINE_AT_START, 2, 1380, 16)
    dump(tracker, (A, 1, (11, 1100, 5, 300)), (B, 2, (1, 80, 0, 0)))
    assert deltas(tracker)[0] == [(1, 100, 0, 0)]


def test_destroy_reports_final_minus_previous_and_forgets_the_flow() -> None:
    tracker = started()
    dump(tracker, (A, 1, (2, 200, 1, 60)))
    deltas(tracker)
    destroy(tracker, A, 1, (5, 700, 3, 180))
    assert deltas(tracker)[0] == [(3, 500, 2, 120)]
    assert tracker.tracked_flows == 0


def test_dump_delta_and_destroy_in_one_interval_merge_into_one_record() -> None:
    tracker = started()
    dump(tracker, (A, 1, (2, 200, 1, 60)))
    deltas(tracker)
    dump(tracker, (A, 1, (3, 300, 1, 60)))
    destroy(tracker, A, 1, (4, 450, 2, 100))
    assert deltas(tracker)[0] == [(2, 250, 1, 40)]


def test_destroy_of_a_never_seen_flow_counts_all_of_it() -> None:
    tracker = started()
    destroy(tracker, A, 9, (4, 4000, 4, 240))
    assert deltas(tracker)[0] == [(4, 4000, 4, 240)]


def test_a_flow_missing_from_a_dump_is_kept_as_a_tombstone_until_its_destroy() -> None:
    tracker = started()
    dump(tracker, (A, 1, (2, 200, 0, 0)), now=0.0)
    deltas(tracker)
    dump(tracker, now=5.0)
    assert tracker.tracked_flows == 1
    destroy(tracker, A, 1, (3, 350, 1, 40), now=6.0)
    tracker.expire(now=100.0)
    records, losses = deltas(tracker)
    assert records == [(1, 150, 1, 40)]
    assert losses == {}


def test_a_tombstone_without_destroy_expires_as_a_counted_loss() -> None:
    tracker = started()
    dump(tracker, (A, 1, (2, 200, 0, 0)), now=0.0)
    deltas(tracker)
    dump(tracker, now=5.0)
    tracker.expire(now=5.0 + GRACE - 1)
    assert deltas(tracker)[1] == {}
    tracker.expire(now=5.0 + GRACE)
    records, losses = deltas(tracker)
    assert records == []
    assert losses[LossReason.VANISHED_WITHOUT_DESTROY].count == 1
    assert tracker.tracked_flows == 0


def test_a_tombstone_seen_again_resumes_from_its_previous_counters() -> None:
    tracker = started()
    dump(tracker, (A, 1, (2, 200, 0, 0)))
    deltas(tracker)
    dump(tracker)
    dump(tracker, (A, 1, (3, 260, 0, 0)))
    assert deltas(tracker)[0] == [(1, 60, 0, 0)]


def test_a_reused_conntrack_id_with_another_tuple_is_another_flow() -> None:
    tracker = started()
    dump(tracker, (A, 5, (2, 200, 0, 0)))
    deltas(tracker)
    destroy(tracker, A, 5, (2, 200, 0, 0))
    dump(tracker, (B, 5, (1, 90, 0, 0)))
    assert deltas(tracker)[0] == [(1, 90, 0, 0)]


def test_the_same_tuple_under_a_new_id_is_a_new_flow() -> None:
    tracker = started()
    dump(tracker, (A, 5, (2, 200, 0, 0)))
    deltas(tracker)
    dump(tracker, (A, 6, (1, 40, 0, 0)))
    records, _ = deltas(tracker)
    assert records == [(1, 40, 0, 0)]
    assert tracker.tracked_flows == 2  # the old id is a tombstone until its DESTROY or grace


def test_counters_going_backwards_count_as_a_new_flow_and_a_reset_loss() -> None:
    tracker = started()
    dump(tracker, (A, 1, (10, 1000, 0, 0)))
    deltas(tracker)
    dump(tracker, (A, 1, (2, 120, 0, 0)))
    records, losses = deltas(tracker)
    assert records == [(2, 120, 0, 0)]
    assert losses[LossReason.COUNTER_RESET].count == 1


def test_a_redelivered_destroy_counts_nothing() -> None:
    tracker = started()
    destroy(tracker, A, 1, (3, 300, 0, 0))
    destroy(tracker, A, 1, (3, 300, 0, 0))
    assert deltas(tracker)[0] == [(3, 300, 0, 0)]
    assert tracker.stats.duplicate_destroys == 1


def test_a_dump_racing_a_destroy_does_not_count_the_flow_again() -> None:
    tracker = started()
    dump(tracker, (A, 1, (1, 100, 0, 0)))
    deltas(tracker)
    destroy(tracker, A, 1, (3, 300, 0, 0))
    dump(tracker, (A, 1, (3, 300, 0, 0)))  # entry still hashed while its DESTROY was already read
    assert deltas(tracker)[0] == [(2, 200, 0, 0)]
    assert tracker.tracked_flows == 0


def test_an_entry_listed_twice_in_one_dump_is_counted_once() -> None:
    tracker = started()
    dump(tracker, (A, 1, (1, 100, 0, 0)), (A, 1, (1, 100, 0, 0)))
    assert deltas(tracker)[0] == [(1, 100, 0, 0)]


def test_destroys_before_the_baseline_ends_are_baseline_losses() -> None:
    tracker = DeltaTracker(GRACE)
    destroy(tracker, A, 1, (3, 300, 1, 50))
    dump(tracker)
    destroy(tracker, B, 2, (1, 10, 0, 0))  # ended while the baseline dump ran: history too
    tracker.end_baseline()
    records, losses = deltas(tracker)
    assert records == []
    assert losses[LossReason.BASELINE_AT_START] == LossReport(LossReason.BASELINE_AT_START, 2, 360, 5)


def test_filtered_flows_are_tracked_but_not_reported() -> None:
    tracker = DeltaTracker(GRACE, accept=lambda entry: "loopback" if entry.orig.src == A.src else None)
    dump(tracker)
    tracker.end_baseline()
    dump(tracker, (A, 1, (1, 100, 0, 0)), (B, 2, (1, 90, 0, 0)))
    assert deltas(tracker)[0] == [(1, 90, 0, 0)]
    assert tracker.stats.filtered == {"loopback": 1}
    assert tracker.tracked_flows == 2


def test_records_carry_both_tuples_and_the_interval() -> None:
    tracker = started()
    reply = Tuple("198.18.3.3", "198.18.1.10", 8080, 40000)
    tracker.observe_dump([sighting(message(A, (1, 100, 1, 60), reply=reply))], 0.0)
    records, _ = tracker.close_interval("node-a", 10.0, 15.0)
    assert records == [
        FlowRecord(
            "node-a",
            6,
            4,
            A.src,
            A.dst,
            A.sport,
            A.dport,
            reply.src,
            reply.dst,
            reply.sport,
            reply.dport,
            100,
            1,
            60,
            1,
            10.0,
            15.0,
        )
    ]


def test_a_restored_snapshot_continues_exactly() -> None:
    tracker = started()
    dump(tracker, (A, 1, (2, 200, 0, 0)))
    deltas(tracker)
    live, tombstones = tracker.snapshot()
    restarted = DeltaTracker(GRACE)
    restarted.restore(live, tombstones, now=0.0)
    dump(restarted, (A, 1, (5, 600, 0, 0)), (B, 2, (1, 90, 0, 0)))
    assert deltas(restarted)[0] == [(3, 400, 0, 0), (1, 90, 0, 0)]
