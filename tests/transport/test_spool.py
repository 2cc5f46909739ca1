"""The spool keeps batches in seq order until acknowledged, drops the oldest when full, and (on disk)
hands the same epoch, numbering and unacknowledged batches to the next agent process."""

from pathlib import Path

from kubenetmon.records import Batch, LossReason, LossReport
from kubenetmon.transport import codec
from kubenetmon.transport.spool import Spool, describe_dropped, merge_losses
from tests.transport.conftest import make_records


def add_batch(spool: Spool, records: int = 10, losses: tuple[LossReport, ...] = ()) -> bytes:
    seq = spool.next_seq
    payload = codec.encode_batch(
        Batch("node-a", spool.epoch, seq, make_records("node-a", records, seq), losses)
    )
    assert spool.add(payload) == []
    return payload


def seqs(spool: Spool) -> list[int]:
    return [seq for seq, _ in spool.pending()]


def test_batches_are_numbered_from_zero_and_kept_in_order() -> None:
    spool = Spool.in_memory(1 << 20)
    payloads = [add_batch(spool) for _ in range(4)]
    assert list(spool.pending()) == list(enumerate(payloads))
    assert spool.next_seq == 4
    assert spool.pending_batches == 4
    assert spool.pending_bytes == sum(map(len, payloads))


def test_an_acknowledged_batch_is_forgotten_in_any_order() -> None:
    spool = Spool.in_memory(1 << 20)
    for _ in range(4):
        add_batch(spool)
    assert spool.ack(2)
    assert not spool.ack(2)
    assert seqs(spool) == [0, 1, 3]
    assert spool.ack(0)
    assert spool.next_after(0) == 1
    assert spool.next_after(1) == 3
    assert spool.read(2) is None


def test_each_memory_spool_has_its_own_epoch() -> None:
    assert Spool.in_memory(1 << 20).epoch != Spool.in_memory(1 << 20).epoch


def test_a_full_spool_drops_the_oldest_batches() -> None:
    spool = Spool.in_memory(1 << 20)
    first = add_batch(spool)
    size = len(first)
    spool.max_bytes = 3 * size + size // 2
    second, third = add_batch(spool), add_batch(spool)
    fourth = codec.encode_batch(Batch("node-a", spool.epoch, 3, make_records("node-a", 10, 3)))
    assert spool.add(fourth) == [first]
    assert seqs(spool) == [1, 2, 3]
    assert [spool.read(s) for s in (1, 2)] == [second, third]
    assert spool.pending_bytes <= spool.max_bytes


def test_a_batch_larger_than_the_whole_spool_is_itself_dropped() -> None:
    spool = Spool.in_memory(100)
    payload = codec.encode_batch(Batch("node-a", spool.epoch, 0, make_records("node-a", 10)))
    assert spool.add(payload) == [payload]
    assert spool.pending_batches == 0
    assert spool.next_seq == 0


def test_dropped_batches_become_one_overflow_report_plus_the_losses_they_carried() -> None:
    carried = (LossReport(LossReason.EVENTS_OVERFLOW, 2), LossReport(LossReason.SPOOL_OVERFLOW, 5, 50, 1))
    first = make_records("node-a", 3)
    second = make_records("node-a", 4, 100)
    dropped = [
        codec.encode_batch(Batch("node-a", "e", 0, first, carried)),
        codec.encode_batch(Batch("node-a", "e", 1, second)),
    ]
    records = first + second
    expected_bytes = sum(r.orig_bytes + r.reply_bytes for r in records) + 50
    expected_packets = sum(r.orig_packets + r.reply_packets for r in records) + 1
    described = describe_dropped(dropped)
    assert described.overflow == LossReport(
        LossReason.SPOOL_OVERFLOW,
        7,
        sum(r.orig_bytes + r.reply_bytes for r in records),
        sum(r.orig_packets + r.reply_packets for r in records),
    )
    assert described.reports() == [
        LossReport(LossReason.SPOOL_OVERFLOW, 7 + 5, expected_bytes, expected_packets),
        LossReport(LossReason.EVENTS_OVERFLOW, 2),
    ]


def test_dropping_only_empty_batches_reports_just_what_they_carried() -> None:
    empty = codec.encode_batch(Batch("node-a", "e", 0, [], (LossReport(LossReason.COUNTER_RESET, 1),)))
    assert describe_dropped([empty]).reports() == [LossReport(LossReason.COUNTER_RESET, 1)]


def test_merging_sums_reports_of_the_same_reason() -> None:
    merged = merge_losses(
        [
            LossReport(LossReason.EVENTS_OVERFLOW, 1, 10, 1),
            LossReport(LossReason.MALFORMED_NETLINK, 4),
            LossReport(LossReason.EVENTS_OVERFLOW, 2, 20, 2),
        ]
    )
    assert merged == [
        LossReport(LossReason.EVENTS_OVERFLOW, 3, 30, 3),
        LossReport(LossReason.MALFORMED_NETLINK, 4),
    ]


def test_an_on_disk_spool_resumes_epoch_numbering_and_unacknowledged_batches(tmp_path: Path) -> None:
    spool = Spool.on_disk(tmp_path, 1 << 20)
    payloads = [add_batch(spool) for _ in range(5)]
    spool.ack(0)
    spool.ack(1)
    epoch = spool.epoch
    spool.close()
    reopened = Spool.on_disk(tmp_path, 1 << 20)
    assert reopened.epoch == epoch
    assert reopened.next_seq == 5
    assert list(reopened.pending()) == list(enumerate(payloads))[2:]
    reopened.close()


def test_an_out_of_order_ack_may_be_resent_after_reopen_but_nothing_is_lost(tmp_path: Path) -> None:
    spool = Spool.on_disk(tmp_path, 1 << 20)
    for _ in range(3):
        add_batch(spool)
    spool.ack(1)
    spool.close()
    reopened = Spool.on_disk(tmp_path, 1 << 20)
    # Only the committed prefix is remembered: batch 1 comes back (the server answers DUPLICATE).
    assert seqs(reopened) == [0, 1, 2]
    reopened.close()


def test_an_unreadable_state_file_starts_a_new_epoch_but_keeps_the_batches(tmp_path: Path) -> None:
    spool = Spool.on_disk(tmp_path, 1 << 20)
    add_batch(spool)
    old_epoch = spool.epoch
    spool.close()
    (tmp_path / "spool.json").write_text("{not json")
    reopened = Spool.on_disk(tmp_path, 1 << 20)
    assert reopened.epoch != old_epoch
    assert seqs(reopened) == [0]
    assert reopened.next_seq == 1
    reopened.close()
