"""Records of the labs on this host, so `kubenetmon lab down` removes exactly what a lab made.

One JSON file per lab under /run/kubenetmon-lab (tmpfs: a reboot removes both the labs and their
records). A record is written *before* the first namespace is created and removed after the last one
is deleted, so a crash in between always leaves a record naming everything that may exist.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STATE_DIR = Path("/run/kubenetmon-lab")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LabRecord:
    """What one lab created and how it was configured."""

    id: str
    prefix: str
    namespaces: tuple[str, ...]
    owner_pid: int
    """The process that built it; a lab whose owner is gone and that is not `kept` is stale."""
    created: float
    kept: bool
    """Left up on purpose (`kubenetmon lab up`): its owner's exit does not tear it down."""
    conntrack_accounting: bool
    topology: dict[str, Any]

    @property
    def owner_alive(self) -> bool:
        """Whether the building process still runs."""
        try:
            os.kill(self.owner_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def record_path(state_dir: Path, lab_id: str) -> Path:
    """Where the record of lab `lab_id` lives."""
    return state_dir / f"{lab_id}.json"


def write_record(state_dir: Path, record: LabRecord) -> None:
    """Write (or replace) a record atomically."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = record_path(state_dir, record.id)
    partial = target.with_suffix(".tmp")
    partial.write_text(json.dumps(asdict(record), indent=2, sort_keys=True))
    partial.replace(target)


def read_record(state_dir: Path, lab_id: str) -> LabRecord:
    """The record of lab `lab_id`; KeyError naming the known labs when there is none."""
    path = record_path(state_dir, lab_id)
    if not path.exists():
        known = ", ".join(record.id for record in read_records(state_dir)) or "none"
        raise KeyError(f"no lab {lab_id!r} recorded in {state_dir} (known: {known})")
    return _parse(path)


def read_records(state_dir: Path) -> list[LabRecord]:
    """Every lab recorded under `state_dir`, oldest first; unreadable files are skipped with a warning."""
    records = []
    for path in sorted(state_dir.glob("*.json")) if state_dir.is_dir() else []:
        try:
            records.append(_parse(path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("skipping unreadable lab record %s: %s", path, exc)
    return sorted(records, key=lambda record: record.created)


def _parse(path: Path) -> LabRecord:
    data = json.loads(path.read_text())
    data["namespaces"] = tuple(data["namespaces"])
    return LabRecord(**data)


def remove_record(state_dir: Path, lab_id: str) -> None:
    """Forget a lab (after its namespaces are gone)."""
    record_path(state_dir, lab_id).unlink(missing_ok=True)
