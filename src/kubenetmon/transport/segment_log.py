"""A durable append-only log of opaque records, in segment files, consumed from the front.

Every record gets a position: consecutive integers, never handed out twice, also across restarts (under
`FsyncPolicy.ALWAYS`; with the other policies a power loss can forget the newest appends, and their
positions are then handed out again).
Consumers `commit(position)` once everything below a position is done with; fully committed segment files
are deleted, and the committed position is persisted so a reopened log replays only what is left.

On disk (one directory per log):

    00000000000000000000.seg   segments, named by the position of their first record
    00000000000000000412.seg   each: 8-byte magic, then frames of <u32 length><u32 crc32><payload>
    committed                  <u64 position><u32 crc32>, replaced atomically

Opening a log scans every segment. A frame that is cut short or fails its CRC ends that segment: the file
is truncated there (on the last segment that is the torn tail of an interrupted write) and the bytes and
any record positions lost with it are reported in `recovery`. The CRC covers the length field as well as
the payload, so a damaged length is caught rather than followed.

Not thread-safe: one owner calls it, from one thread at a time.
"""

from __future__ import annotations

import bisect
import enum
import os
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kubenetmon.errors import KubenetmonError

MAGIC = b"KNMSEG1\n"
_FRAME = struct.Struct("<II")
_COMMITTED = struct.Struct("<QI")
_SUFFIX = ".seg"
_COMMIT_FILE = "committed"


class LogFull(KubenetmonError):
    """Appending would take the log past its size bound; commit (or drop) records first."""


class CorruptRecord(KubenetmonError):
    """A record read back from disk no longer matches its checksum."""


class FsyncPolicy(enum.StrEnum):
    """When appended bytes are forced to stable storage."""

    ALWAYS = "always"
    """Before `append` returns: a returned position survives power loss."""
    INTERVAL = "interval"
    """At most every `fsync_interval` seconds: survives a process crash, a power loss may cost the last
    interval's appends."""
    NEVER = "never"
    """Only at close: survives a process crash (the page cache is the kernel's), not a power loss."""


@dataclass(frozen=True, slots=True)
class SegmentLogSettings:
    """Size and durability of one log."""

    max_bytes: int = 512 * 1024 * 1024
    """Bound on the segment files' total size; `append` raises `LogFull` beyond it."""
    segment_bytes: int = 16 * 1024 * 1024
    """A segment is sealed once it reaches this size. Space is freed a whole segment at a time, so
    smaller segments free space sooner; at most one partly committed segment is ever kept."""
    fsync: FsyncPolicy = FsyncPolicy.ALWAYS
    fsync_interval: float = 1.0


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What opening the log found."""

    records: int
    """Uncommitted records replayed."""
    torn_bytes: int
    """Bytes cut off the end of segments (an interrupted write, or corruption)."""
    lost_records: int
    """Positions below the last record that no longer hold a record (corrupt or missing segments)."""
    commit_file_reset: bool
    """The committed position was unreadable; everything on disk is replayed."""


@dataclass(slots=True)
class _Segment:
    base: int
    path: Path
    fd: int
    size: int
    offsets: list[int] = field(default_factory=list)
    """File offset of each record's frame; record `base + i` is at `offsets[i]`."""
    lengths: list[int] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.base + len(self.offsets)


class SegmentLog:
    """See the module docstring. Opening recovers the directory (creating it if needed)."""

    def __init__(self, directory: Path, settings: SegmentLogSettings | None = None) -> None:
        self._dir = directory
        self._settings = settings or SegmentLogSettings()
        self._dir.mkdir(parents=True, exist_ok=True)
        self._segments: list[_Segment] = []
        self._last_sync = time.monotonic()
        committed, reset = self._read_committed()
        torn, lost, highest_base = self._recover_segments()
        self._start = max([committed] + [s.base for s in self._segments[:1]])
        # Positions are never handed out twice, even if the segment that held them is gone.
        self._next = max([committed, highest_base] + [s.end for s in self._segments[-1:]])
        self._delete_committed_segments()
        self._pending_bytes = sum(self._record_length(p) for p in self.positions())
        self.recovery = RecoveryReport(
            records=sum(1 for _ in self.positions()),
            torn_bytes=torn,
            lost_records=lost,
            commit_file_reset=reset,
        )

    @property
    def start(self) -> int:
        """The first uncommitted position."""
        return self._start

    @property
    def next_position(self) -> int:
        """The position the next append will get."""
        return self._next

    @property
    def pending_bytes(self) -> int:
        """Payload bytes of the uncommitted records."""
        return self._pending_bytes

    @property
    def disk_bytes(self) -> int:
        """Total size of the segment files."""
        return sum(segment.size for segment in self._segments)

    def append(self, payload: bytes) -> int:
        """Append one record and return its position; raises `LogFull` if it does not fit."""
        frame_size = _FRAME.size + len(payload)
        active = self._segments[-1] if self._segments else None
        if active is not None and (
            active.end != self._next  # positions were lost after it: a segment holds consecutive ones
            or (active.offsets and active.size + frame_size > self._settings.segment_bytes)
        ):
            active = None
        new_segment_bytes = len(MAGIC) if active is None else 0
        if self.disk_bytes + new_segment_bytes + frame_size > self._settings.max_bytes:
            raise LogFull(
                f"log {self._dir} holds {self.disk_bytes} bytes; a {len(payload)}-byte record would take it "
                f"past its bound of {self._settings.max_bytes}"
            )
        segment = active or self._new_segment()
        length = len(payload)
        header = _FRAME.pack(length, zlib.crc32(payload, zlib.crc32(length.to_bytes(4, "little"))))
        _write_all(segment.fd, [header, payload], segment.size)
        segment.offsets.append(segment.size)
        segment.lengths.append(length)
        segment.size += frame_size
        position = self._next
        self._next += 1
        self._pending_bytes += length
        self._maybe_sync(segment.fd)
        return position

    def __contains__(self, position: int) -> bool:
        return self._locate(position) is not None

    def read(self, position: int) -> bytes:
        """The payload at an uncommitted position; KeyError if there is none, `CorruptRecord` if the bytes
        on disk changed since they were written or recovered."""
        located = self._locate(position)
        if located is None:
            raise KeyError(position)
        segment, index = located
        offset, length = segment.offsets[index], segment.lengths[index]
        data = os.pread(segment.fd, _FRAME.size + length, offset)
        stored_length, crc = _FRAME.unpack_from(data)
        payload = data[_FRAME.size :]
        if stored_length != length or crc != zlib.crc32(payload, zlib.crc32(length.to_bytes(4, "little"))):
            raise CorruptRecord(f"record {position} in {segment.path} at offset {offset} fails its checksum")
        return payload

    def positions(self, after: int = 0) -> Iterator[int]:
        """Every uncommitted position from `after` on that holds a record, in order."""
        for segment in self._segments:
            if segment.end > after:
                yield from range(max(segment.base, self._start, after), segment.end)

    def commit(self, position: int) -> None:
        """Everything below `position` is done with: persist that and delete fully committed segments."""
        position = min(position, self._next)
        if position <= self._start:
            return
        self._pending_bytes -= sum(self._record_length(p) for p in range(self._start, position))
        self._start = position
        self._write_committed()
        self._delete_committed_segments()

    def sync(self) -> None:
        """Force appended bytes to stable storage now."""
        for segment in self._segments:
            os.fsync(segment.fd)
        self._last_sync = time.monotonic()

    def close(self) -> None:
        """Sync and release the files. The log must not be used afterwards."""
        self.sync()
        for segment in self._segments:
            os.close(segment.fd)
        self._segments.clear()

    def __enter__(self) -> SegmentLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _locate(self, position: int) -> tuple[_Segment, int] | None:
        if not self._start <= position < self._next:
            return None
        index = bisect.bisect_right([s.base for s in self._segments], position) - 1
        if index < 0:
            return None
        segment = self._segments[index]
        if position >= segment.end:
            return None
        return segment, position - segment.base

    def _record_length(self, position: int) -> int:
        located = self._locate(position)
        return 0 if located is None else located[0].lengths[located[1]]

    def _new_segment(self) -> _Segment:
        path = self._dir / f"{self._next:020d}{_SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        _write_all(fd, [MAGIC], 0)
        if self._segments and self._settings.fsync is not FsyncPolicy.NEVER:
            os.fsync(self._segments[-1].fd)
        segment = _Segment(base=self._next, path=path, fd=fd, size=len(MAGIC))
        self._segments.append(segment)
        if self._settings.fsync is FsyncPolicy.ALWAYS:
            os.fsync(fd)
            _fsync_dir(self._dir)
        return segment

    def _maybe_sync(self, fd: int) -> None:
        policy = self._settings.fsync
        now = time.monotonic()
        if policy is FsyncPolicy.ALWAYS or (
            policy is FsyncPolicy.INTERVAL and now - self._last_sync >= self._settings.fsync_interval
        ):
            os.fdatasync(fd)
            self._last_sync = now

    def _read_committed(self) -> tuple[int, bool]:
        path = self._dir / _COMMIT_FILE
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return 0, False
        if len(data) == _COMMITTED.size:
            position, crc = _COMMITTED.unpack(data)
            if crc == zlib.crc32(data[:8]):
                return position, False
        return 0, True

    def _write_committed(self) -> None:
        head = struct.pack("<Q", self._start)
        temporary = self._dir / f"{_COMMIT_FILE}.tmp"
        with temporary.open("wb") as out:
            out.write(head + struct.pack("<I", zlib.crc32(head)))
            if self._settings.fsync is not FsyncPolicy.NEVER:
                out.flush()
                os.fsync(out.fileno())
        temporary.replace(self._dir / _COMMIT_FILE)
        if self._settings.fsync is FsyncPolicy.ALWAYS:
            _fsync_dir(self._dir)

    def _recover_segments(self) -> tuple[int, int, int]:
        """Index every segment, truncating each at its first bad frame; (torn bytes, lost positions,
        highest segment base seen)."""
        torn = lost = highest_base = 0
        paths = sorted(p for p in self._dir.iterdir() if p.suffix == _SUFFIX and p.stem.isdigit())
        for index, path in enumerate(paths):
            base = int(path.stem)
            highest_base = max(highest_base, base)
            limit = int(paths[index + 1].stem) if index + 1 < len(paths) else None
            fd = os.open(path, os.O_RDWR)
            segment = _Segment(base=base, path=path, fd=fd, size=0)
            valid_end = _scan(fd, segment, limit)
            actual = os.fstat(fd).st_size
            torn += actual - valid_end
            if limit is not None:
                lost += limit - segment.end
            if valid_end == 0:  # not even the magic survived: nothing to keep
                os.close(fd)
                path.unlink()
                continue
            if actual > valid_end:
                os.ftruncate(fd, valid_end)
                os.fsync(fd)
            segment.size = valid_end
            self._segments.append(segment)
        return torn, lost, highest_base

    def _delete_committed_segments(self) -> None:
        while self._segments and self._segments[0].end <= self._start:
            segment = self._segments.pop(0)
            os.close(segment.fd)
            segment.path.unlink()


def _scan(fd: int, segment: _Segment, limit: int | None) -> int:
    """Index the valid frames of a segment file; return where the valid part ends."""
    data = os.pread(fd, os.fstat(fd).st_size, 0)
    if data[: len(MAGIC)] != MAGIC:
        return 0
    offset = len(MAGIC)
    while offset + _FRAME.size <= len(data) and (limit is None or segment.end < limit):
        length, crc = _FRAME.unpack_from(data, offset)
        start = offset + _FRAME.size
        if start + length > len(data):
            break
        if crc != zlib.crc32(data[start : start + length], zlib.crc32(length.to_bytes(4, "little"))):
            break
        segment.offsets.append(offset)
        segment.lengths.append(length)
        offset = start + length
    return offset


def _write_all(fd: int, chunks: list[bytes], offset: int) -> None:
    data = b"".join(chunks)
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
