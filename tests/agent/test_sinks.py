"""JsonlSink writes FlowRecord.to_json_dict lines; MemorySink keeps batches."""

from __future__ import annotations

import io
import json

from kubenetmon.agent.sinks import JsonlSink, MemorySink
from kubenetmon.records import Batch, FlowRecord, LossReason, LossReport

RECORD = FlowRecord(
    "n1",
    17,
    6,
    "fd00:db8:1::10",
    "fd00:db8:2::10",
    5000,
    53,
    "fd00:db8:2::10",
    "fd00:db8:1::10",
    53,
    5000,
    1248,
    1,
    0,
    0,
    1795687200.0,
    1795687205.0,
)


async def test_jsonl_sink_writes_one_line_per_record_that_round_trips() -> None:
    stream = io.StringIO()
    sink = JsonlSink(stream)
    await sink.submit(Batch("n1", "e", 0, [RECORD, RECORD], [LossReport(LossReason.COUNTER_RESET, 1)]))
    await sink.aclose(1.0)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert FlowRecord.from_json_dict(json.loads(lines[0])) == RECORD
    assert json.loads(lines[0]) == RECORD.to_json_dict()


async def test_jsonl_sink_writes_nothing_for_an_empty_batch() -> None:
    stream = io.StringIO()
    await JsonlSink(stream).submit(Batch("n1", "e", 0, []))
    assert stream.getvalue() == ""


async def test_memory_sink_keeps_batches_in_order() -> None:
    sink = MemorySink()
    for seq in range(3):
        await sink.submit(Batch("n1", "e", seq, [RECORD]))
    await sink.aclose(0)
    assert [batch.seq for batch in sink.batches] == [0, 1, 2] and sink.closed
