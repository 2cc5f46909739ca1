"""The segment log keeps every appended record across reopen, crash and torn writes, and frees space
only for what was committed."""

import os
import shutil
import signal
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubenetmon.transport.segment_log import (
    MAGIC,
    CorruptRecord,
    FsyncPolicy,
    LogFull,
    SegmentLog,
    SegmentLogSettings,
)

FRAME_HEADER = 8


def payload(i: int) -> bytes:
    return f"record-{i:04d}-".encode() * (1 + i % 5)


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


OPENED: list[SegmentLog] = []


def open_log(directory: Path, **settings: object) -> SegmentLog:
    log = SegmentLog(directory, SegmentLogSettings(**settings))  # type: ignore[arg-type]
    OPENED.append(log)
    return log


@pytest.fixture(autouse=True)
def _close_logs() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


def fill(directory: Path, count: int, **settings: object) -> SegmentLog:
    log = open_log(directory, **settings)
    for i in range(count):
        assert log.append(payload(i)) == i
    return log


def test_positions_after_a_point_skip_everything_before_it_across_segments(tmp_path: Path) -> None:
    log = fill(tmp_path, 20, segment_bytes=200)
    log.commit(3)
    assert [list(log.positions(after)) for after in (0, 7, 19, 20)] == [
        list(range(3, 20)),
        list(range(7, 20)),
        [19],
        [],
    ]


def test_appended_records_read_back_in_order_after_reopen(tmp_path: Path) -> None:
    fill(tmp_path, 20, segment_bytes=200).close()
    log = open_log(tmp_path, segment_bytes=200)
    assert list(log.positions()) == list(range(20))
    assert [log.read(p) for p in log.positions()] == [payload(i) for i in range(20)]
    assert log.recovery.records == 20
    assert log.recovery.torn_bytes == 0
    assert log.next_position == 20


def test_segments_roll_at_the_configured_size(tmp_path: Path) -> None:
    log = fill(tmp_path, 20, segment_bytes=200)
    files = segment_files(tmp_path)
    assert len(files) > 3
    # Every sealed segment stayed within its size, and files are named by their first position.
    for path in files[:-1]:
        assert path.stat().st_size <= 200
    assert files[0].name == f"{0:020d}.seg"
    log.close()


def test_commit_deletes_fully_committed_segments_and_survives_reopen(tmp_path: Path) -> None:
    log = fill(tmp_path, 20, segment_bytes=200)
    before = segment_files(tmp_path)
    log.commit(12)
    after = segment_files(tmp_path)
    assert len(after) < len(before)
    assert int(after[0].stem) <= 12
    log.close()
    reopened = open_log(tmp_path, segment_bytes=200)
    assert list(reopened.positions()) == list(range(12, 20))
    assert reopened.start == 12


def test_positions_continue_after_everything_is_committed(tmp_path: Path) -> None:
    log = fill(tmp_path, 5)
    log.commit(5)
    log.close()
    assert segment_files(tmp_path) == []
    reopened = open_log(tmp_path)
    assert reopened.next_position == 5
    assert reopened.append(b"x") == 5


def test_pending_bytes_count_uncommitted_payloads(tmp_path: Path) -> None:
    log = fill(tmp_path, 10, segment_bytes=200)
    assert log.pending_bytes == sum(len(payload(i)) for i in range(10))
    log.commit(4)
    assert log.pending_bytes == sum(len(payload(i)) for i in range(4, 10))
    log.close()
    assert open_log(tmp_path, segment_bytes=200).pending_bytes == sum(len(payload(i)) for i in range(4, 10))


def test_a_full_log_says_so_and_accepts_again_after_commit(tmp_path: Path) -> None:
    log = open_log(tmp_path, max_bytes=400, segment_bytes=100)
    appended = 0
    with pytest.raises(LogFull, match="bound of 400"):
        while True:
            log.append(b"y" * 40)
            appended += 1
    assert log.disk_bytes <= 400
    log.commit(appended)
    assert log.append(b"y" * 40) == appended


def test_reading_a_committed_position_is_a_key_error(tmp_path: Path) -> None:
    log = fill(tmp_path, 3)
    log.commit(2)
    with pytest.raises(KeyError):
        log.read(1)
    assert 1 not in log
    assert 2 in log


@pytest.mark.parametrize("policy", list(FsyncPolicy))
def test_every_fsync_policy_keeps_records_across_reopen(tmp_path: Path, policy: FsyncPolicy) -> None:
    fill(tmp_path, 7, fsync=policy, fsync_interval=0.0).close()
    assert [open_log(tmp_path).read(p) for p in range(7)] == [payload(i) for i in range(7)]


def test_a_torn_last_record_is_cut_at_every_byte_offset(tmp_path: Path) -> None:
    """Crash mid-write, simulated by cutting the last segment at every byte offset of the last frame.

    1. Write 6 records, remember where the last frame starts and ends.
    2. For each cut point: copy the directory, truncate there, reopen.
    3. The first 5 records are intact; the 6th exists only if the cut left its whole frame; the torn
       bytes are counted and removed; the next append gets the next position and reads back.
    """
    source = tmp_path / "source"
    fill(source, 6).close()
    (segment,) = segment_files(source)
    frame_end = segment.stat().st_size
    frame_start = frame_end - FRAME_HEADER - len(payload(5))
    for cut in range(frame_start, frame_end + 1):
        copy = tmp_path / f"cut-{cut}"
        shutil.copytree(source, copy)
        os.truncate(copy / segment.name, cut)
        log = open_log(copy)
        whole = cut == frame_end
        assert list(log.positions()) == list(range(6 if whole else 5)), cut
        assert [log.read(p) for p in range(5)] == [payload(i) for i in range(5)]
        assert log.recovery.torn_bytes == (0 if whole else cut - frame_start)
        assert (copy / segment.name).stat().st_size == (frame_end if whole else frame_start)
        position = log.append(b"after")
        assert position == (6 if whole else 5)
        log.close()
        assert open_log(copy).read(position) == b"after"
        shutil.rmtree(copy)


def test_a_corrupted_byte_ends_the_segment_at_that_record(tmp_path: Path) -> None:
    fill(tmp_path, 6).close()
    (segment,) = segment_files(tmp_path)
    data = bytearray(segment.read_bytes())
    third = data.index(payload(3))
    data[third + 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    log = open_log(tmp_path)
    assert list(log.positions()) == [0, 1, 2]
    assert log.recovery.torn_bytes == len(data) - (third - FRAME_HEADER)
    assert segment.stat().st_size == third - FRAME_HEADER


def test_a_damaged_sealed_segment_reports_the_positions_it_lost(tmp_path: Path) -> None:
    fill(tmp_path, 20, segment_bytes=200).close()
    first, second = segment_files(tmp_path)[:2]
    os.truncate(first, len(MAGIC) + 3)
    log = open_log(tmp_path, segment_bytes=200)
    lost = int(second.stem)
    assert log.recovery.lost_records == lost
    assert list(log.positions()) == list(range(lost, 20))
    assert log.next_position == 20


def test_a_segment_without_its_magic_is_discarded_without_reusing_its_positions(tmp_path: Path) -> None:
    fill(tmp_path, 20, segment_bytes=200).close()
    last = segment_files(tmp_path)[-1]
    os.truncate(last, 3)
    log = open_log(tmp_path, segment_bytes=200)
    assert not last.exists()
    assert log.next_position == int(last.stem)
    assert log.recovery.torn_bytes == 3
    position = log.append(b"after")
    assert position == int(last.stem)
    assert log.read(position) == b"after"
    log.close()
    assert open_log(tmp_path, segment_bytes=200).read(position) == b"after"


def test_an_unreadable_commit_file_replays_everything(tmp_path: Path) -> None:
    log = fill(tmp_path, 10)
    log.commit(6)
    log.close()
    (tmp_path / "committed").write_bytes(b"\x00garbage")
    reopened = open_log(tmp_path)
    assert reopened.recovery.commit_file_reset
    assert list(reopened.positions()) == list(range(10))


def test_bytes_changed_on_disk_after_opening_are_reported_on_read(tmp_path: Path) -> None:
    log = fill(tmp_path, 3)
    (segment,) = segment_files(tmp_path)
    data = bytearray(segment.read_bytes())
    data[data.index(payload(1))] ^= 0x01
    segment.write_bytes(bytes(data))
    with pytest.raises(CorruptRecord, match="record 1"):
        log.read(1)
    assert log.read(2) == payload(2)


def test_a_frame_is_length_crc_payload(tmp_path: Path) -> None:
    fill(tmp_path, 1).close()
    data = segment_files(tmp_path)[0].read_bytes()
    assert data[: len(MAGIC)] == MAGIC
    length = int.from_bytes(data[8:12], "little")
    crc = int.from_bytes(data[12:16], "little")
    assert data[16 : 16 + length] == payload(0)
    assert crc == zlib.crc32(data[8:12] + payload(0))


CHILD = """
import sys
from collections.abc import Iterator
from pathlib import Path
from kubenetmon.transport.segment_log import SegmentLog
log = SegmentLog(Path(sys.argv[1]))
i = 0
while True:
    position = log.append(f"child-{i}".encode() * 50)
    print(position, flush=True)
    i += 1
"""


def test_every_acknowledged_append_survives_sigkill(tmp_path: Path) -> None:
    """A writer killed with SIGKILL mid-stream loses nothing it reported as appended."""
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": "src"},
        text=True,
    ) as child:
        try:
            assert child.stdout is not None
            reported = [int(child.stdout.readline()) for _ in range(300)]
        finally:
            child.send_signal(signal.SIGKILL)
    log = open_log(tmp_path)
    present = list(log.positions())
    assert present[: len(reported)] == reported
    for position in present:
        assert log.read(position) == f"child-{position}".encode() * 50
    assert log.append(b"next") == len(present)


def test_appends_after_damaged_tail_segments_get_the_right_positions(tmp_path: Path) -> None:
    fill(tmp_path, 20, segment_bytes=200).close()
    *_, second_last, last = segment_files(tmp_path)
    os.truncate(second_last, len(MAGIC) + 3)
    os.truncate(last, 3)
    log = open_log(tmp_path, segment_bytes=200)
    position = log.append(b"after")
    assert position == int(last.stem)
    log.close()
    reopened = open_log(tmp_path, segment_bytes=200)
    assert reopened.read(position) == b"after"
    assert list(reopened.positions())[-1] == position
