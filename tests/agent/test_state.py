"""Saved tracker state: loaded once, only on the same boot and namespace, never when corrupt."""

from __future__ import annotations

from pathlib import Path

from kubenetmon.agent import state

SAVED = state.SavedState("epoch1", 42, {b"key-a": b"raw-a", b"k" * 80: b"r" * 56}, {b"gone": b"raw-g"})


def test_state_round_trips_and_is_removed_when_loaded(tmp_path: Path) -> None:
    state.save(tmp_path, "boot:1:2", SAVED)
    loaded, why = state.load(tmp_path, "boot:1:2")
    assert (loaded, why) == (SAVED, "")
    assert state.load(tmp_path, "boot:1:2")[0] is None


def test_state_from_another_boot_or_namespace_is_discarded(tmp_path: Path) -> None:
    state.save(tmp_path, "boot:1:2", SAVED)
    loaded, why = state.load(tmp_path, "boot:1:3")
    assert loaded is None and "another boot" in why


def test_a_truncated_state_file_is_discarded_with_a_reason(tmp_path: Path) -> None:
    path = state.save(tmp_path, "boot:1:2", SAVED)
    path.write_bytes(path.read_bytes()[:-3])
    loaded, why = state.load(tmp_path, "boot:1:2")
    assert loaded is None and "unreadable" in why
