"""Tracker state saved on graceful shutdown and loaded once at the next start (--state-dir).

The file holds the last counters of every flow, the batch epoch and the next sequence number, plus the
boot id and the network namespace's inode: conntrack ids and counters mean nothing on another boot or
in another namespace, so a mismatch discards the state (the agent then takes a fresh baseline). The
file is deleted as it is loaded, so a crash later can never resurrect old counters.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from kubenetmon.conntrack import netns

STATE_FILE = "agent-state.bin"
MAGIC = b"KUBENETMON-AGENT-STATE 1\n"
_LENGTHS = struct.Struct("=HH")
_COUNT = struct.Struct("=I")
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


@dataclass(frozen=True, slots=True)
class SavedState:
    """What a restarted agent needs to continue exactly where the last one stopped."""

    epoch: str
    next_seq: int
    live: dict[bytes, bytes]
    tombstones: dict[bytes, bytes]


def namespace_identity(namespace: str | None) -> str:
    """boot id + network namespace inode: where conntrack keys stay meaningful."""
    stat = netns.run_in(namespace, Path("/proc/thread-self/ns/net").stat)
    return f"{BOOT_ID.read_text().strip()}:{stat.st_dev}:{stat.st_ino}"


def save(directory: Path, identity: str, state: SavedState) -> Path:
    """Write the state atomically (temp file + rename); returns the file's path."""
    directory.mkdir(parents=True, exist_ok=True)
    header = {"identity": identity, "epoch": state.epoch, "next_seq": state.next_seq}
    parts = [MAGIC, json.dumps(header).encode() + b"\n"]
    for table in (state.live, state.tombstones):
        parts.append(_COUNT.pack(len(table)))
        for key, raw in table.items():
            parts += [_LENGTHS.pack(len(key), len(raw)), key, raw]
    path = directory / STATE_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(b"".join(parts))
    temporary.replace(path)
    return path


def load(directory: Path, identity: str) -> tuple[SavedState | None, str]:
    """(state, "") when a usable state file was there, else (None, why not). The file is removed."""
    path = directory / STATE_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, f"no saved state in {directory}"
    path.unlink()
    try:
        return _decode(data, identity)
    except (ValueError, KeyError, struct.error) as exc:
        return None, f"saved state {path} is unreadable ({exc})"


def _decode(data: bytes, identity: str) -> tuple[SavedState | None, str]:
    if not data.startswith(MAGIC):
        raise ValueError("not a kubenetmon agent state file")
    newline = data.index(b"\n", len(MAGIC))
    header = json.loads(data[len(MAGIC) : newline])
    if header["identity"] != identity:
        return None, "saved state is from another boot or network namespace"
    offset = newline + 1
    tables: list[dict[bytes, bytes]] = []
    for _ in range(2):
        (count,) = _COUNT.unpack_from(data, offset)
        offset += _COUNT.size
        table = {}
        for _ in range(count):
            key_length, raw_length = _LENGTHS.unpack_from(data, offset)
            offset += _LENGTHS.size
            key = data[offset : offset + key_length]
            raw = data[offset + key_length : offset + key_length + raw_length]
            offset += key_length + raw_length
            table[key] = raw
        tables.append(table)
    if offset != len(data):
        raise ValueError("trailing bytes")
    return SavedState(str(header["epoch"]), int(header["next_seq"]), tables[0], tables[1]), ""
