"""The server's write-ahead buffer: what is acknowledged survives, what is resent is recognised."""

import asyncio
from pathlib import Path

from kubenetmon.records import Batch, FlowRecord
from kubenetmon.server.ingest import IngestLog, IngestSettings, SequenceBook, header, unframe
from kubenetmon.transport import codec
from kubenetmon.transport.codec import AckStatus
from kubenetmon.transport.proto.flows_pb2 import FlowBatch

RECORD = FlowRecord(
    node="node-a", proto=17, family=4, orig_src="198.18.1.10", orig_dst="198.18.2.10", orig_sport=4000,
    orig_dport=53, reply_src="198.18.2.10", reply_dst="198.18.1.10", reply_sport=53, reply_dport=4000,
    orig_bytes=128, orig_packets=1, reply_bytes=256, reply_packets=1, start=1795687200.0, end=1795687205.0,
)  # fmt: skip


def batch(seq: int, node: str = "node-a", epoch: str = "e1", records: int = 3) -> Batch:
    return Batch(node=node, epoch=epoch, seq=seq, records=[RECORD._replace(node=node)] * records)


def settings(tmp_path: Path, **overrides: int) -> IngestSettings:
    return IngestSettings(directory=tmp_path / "ingest", **overrides)  # type: ignore[arg-type]


async def test_an_accepted_batch_is_still_there_after_reopening(tmp_path: Path) -> None:
    ingest = IngestLog(settings(tmp_path))
    assert (await ingest.accept(batch(0))).status is AckStatus.ACCEPTED
    ingest.close()

    reopened = IngestLog(settings(tmp_path))
    [(_, record)] = list(reopened.pending(reopened.start))
    assert unframe(record, 100) == batch(0)
    assert header(record)[:3] == ("node-a", "e1", 0)


async def test_a_received_batch_is_buffered_as_the_bytes_it_arrived_in(tmp_path: Path) -> None:
    # Not a canonical encoding (the node field twice; protobuf keeps the last): what the buffer holds
    # must be exactly what arrived, not what encoding the decoded batch again would give.
    payload = FlowBatch(node="other").SerializeToString() + codec.encode_batch(batch(0))
    ingest = IngestLog(settings(tmp_path))
    await ingest.accept(codec.decode_batch(payload, 100))

    [(_, record)] = list(ingest.pending(ingest.start))
    assert record[header(record)[3] :] == payload
    assert unframe(record, 100) == batch(0)


async def test_a_resent_batch_is_a_duplicate_before_and_after_a_restart(tmp_path: Path) -> None:
    ingest = IngestLog(settings(tmp_path))
    await ingest.accept(batch(0))
    assert (await ingest.accept(batch(0))).status is AckStatus.DUPLICATE
    ingest.close()

    reopened = IngestLog(settings(tmp_path))
    assert (await reopened.accept(batch(0))).status is AckStatus.DUPLICATE
    assert (await reopened.accept(batch(0, epoch="e2"))).status is AckStatus.ACCEPTED
    assert len(list(reopened.pending(reopened.start))) == 2


async def test_duplicates_are_recognised_after_their_batches_were_committed(tmp_path: Path) -> None:
    ingest = IngestLog(settings(tmp_path))
    for seq in range(3):
        await ingest.accept(batch(seq))
    ingest.commit(ingest.next_position)
    ingest.close()

    reopened = IngestLog(settings(tmp_path))
    assert list(reopened.pending(reopened.start)) == []
    assert (await reopened.accept(batch(2))).status is AckStatus.DUPLICATE
    assert (await reopened.accept(batch(3))).status is AckStatus.ACCEPTED


async def test_pending_reads_at_most_the_limit_from_the_given_position(tmp_path: Path) -> None:
    ingest = IngestLog(settings(tmp_path))
    for seq in range(10):
        await ingest.accept(batch(seq))
    first = ingest.start
    assert [position for position, _ in ingest.pending(first + 4, limit=3)] == [
        first + 4,
        first + 5,
        first + 6,
    ]
    assert [position for position, _ in ingest.pending(first + 8, limit=3)] == [first + 8, first + 9]


async def test_concurrent_batches_share_fsyncs_and_all_become_durable(tmp_path: Path) -> None:
    ingest = IngestLog(settings(tmp_path))
    decisions = await asyncio.gather(
        *(ingest.accept(batch(seq, node=f"node-{seq % 5}")) for seq in range(50))
    )
    assert {d.status for d in decisions} == {AckStatus.ACCEPTED}
    assert len(list(ingest.pending(ingest.start))) == 50


async def test_a_full_buffer_asks_agents_to_retry_and_keeps_what_it_has(tmp_path: Path) -> None:
    ingest = IngestLog(settings(tmp_path, max_bytes=4 * 65536, segment_bytes=65536, retry_after_ms=700))
    statuses = [(await ingest.accept(batch(seq, records=500))).status for seq in range(40)]
    accepted = statuses.count(AckStatus.ACCEPTED)
    assert 0 < accepted < 40
    assert statuses[accepted:] == [AckStatus.RETRY] * (40 - accepted)
    retry = await ingest.accept(batch(99, records=500))
    assert retry.retry_after_ms == 700
    assert len(list(ingest.pending(ingest.start))) == accepted


def test_settings_refuse_a_bound_smaller_than_four_segments(tmp_path: Path) -> None:
    assert IngestSettings(tmp_path, max_bytes=10, segment_bytes=10).problems()
    assert IngestSettings(tmp_path).problems() == []


def test_the_book_accepts_a_retried_batch_that_arrives_after_a_later_one() -> None:
    book = SequenceBook()
    for seq in (0, 1, 3, 4):
        book.add("n", "e", seq, now=0.0)
    assert ("n", "e", 2) not in book
    book.add("n", "e", 2, now=0.0)
    assert all(("n", "e", seq) in book for seq in range(5))
    assert ("n", "e", 5) not in book


def test_the_book_stays_bounded_when_a_gap_never_fills() -> None:
    book = SequenceBook(max_pending=10)
    book.add("n", "e", 0, now=0.0)
    for seq in range(2, 100):  # seq 1 was dropped by the agent's spool and will never come
        book.add("n", "e", seq, now=0.0)
    assert book.to_json().count(",") < 30
    assert ("n", "e", 99) in book


def test_the_book_round_trips_through_json_and_forgets_silent_agents() -> None:
    book = SequenceBook()
    book.add("old", "e", 7, now=0.0)
    book.add("new", "e", 3, now=1000.0)
    copy = SequenceBook.from_json(book.to_json())
    assert ("old", "e", 7) in copy and ("new", "e", 3) in copy
    copy.prune(now=1000.0, max_age=500.0)
    assert ("old", "e", 7) not in copy and ("new", "e", 3) in copy
