"""RecordSink implementations that live with the agent: JSON lines on a stream, and memory for tests."""

from __future__ import annotations

import sys
from typing import TextIO

import orjson

from kubenetmon.records import Batch


class JsonlSink:
    """Writes each record of each batch as one JSON line (FlowRecord.to_json_dict) and flushes per batch."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout

    async def submit(self, batch: Batch) -> None:
        """Write the batch's records; losses are the daemon's to log and count, not part of the format."""
        lines = [orjson.dumps(record.to_json_dict()).decode() for record in batch.records]
        if lines:
            self._stream.write("\n".join(lines) + "\n")
        self._stream.flush()

    async def aclose(self, timeout: float) -> None:  # noqa: ASYNC109 - RecordSink's drain budget
        """Flush the stream (it is not ours to close)."""
        self._stream.flush()


class MemorySink:
    """Keeps every batch in `batches`, in order."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.closed = False

    async def submit(self, batch: Batch) -> None:
        """Append the batch."""
        self.batches.append(batch)

    async def aclose(self, timeout: float) -> None:  # noqa: ASYNC109 - RecordSink's drain budget
        """Mark the sink closed."""
        self.closed = True
