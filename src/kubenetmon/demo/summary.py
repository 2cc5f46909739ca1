"""The accuracy verdict for people (one line) and for machines (a JSON object)."""

from __future__ import annotations

from typing import Any

from kubenetmon.demo.accuracy import Tally, Verdict
from kubenetmon.demo.observed import PairKey
from kubenetmon.records import proto_name

TOLERANCE = 0.001
"""The largest difference a pair may show, as a fraction of its truth (0.1 %)."""


def human_bytes(count: int) -> str:
    """1234567 -> '1.2 MB' (decimal units, as bills count)."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def accuracy_line(verdict: Verdict) -> str:
    """'accuracy: same-zone 1.0000 (4.1 MB / 4.1 MB) · cross-zone 1.0000 (...) · ...' (metered / truth)."""
    parts = [
        f"{name} {tally.ratio:.4f} ({human_bytes(tally.metered)} / {human_bytes(tally.truth)})"
        for name, tally in verdict.classes.items()
    ]
    return "accuracy: " + " · ".join(parts) if parts else "accuracy: no traffic was measured"


def problems(verdict: Verdict, tolerance: float = TOLERANCE) -> list[str]:
    """Everything that makes the verdict a failure, one line each (empty: metered equals the truth)."""
    found = [f"misattributed: {line}" for line in verdict.misattributed]
    found += [
        f"pair {_pair(pair)}: metered {tally.metered} bytes, truth {tally.truth}"
        for pair, tally in verdict.pairs.items()
        if not tally.within(tolerance)
    ]
    found += [
        f"observation point {node}: its rows hold {tally.metered} bytes, its own counters saw {tally.truth}"
        for node, tally in verdict.points.items()
        if not tally.within(tolerance)
    ]
    return found


def _pair(pair: PairKey) -> str:
    return f"{proto_name(pair.proto)} {pair.sender} -> {pair.receiver}"


def tally_json(tally: Tally) -> dict[str, Any]:
    """One tally as JSON: the ratio (metered / truth) and the byte counts behind it."""
    return {
        "accuracy": round(tally.ratio, 6),
        "metered_bytes": tally.metered,
        "truth_bytes": tally.truth,
        "lost_bytes": tally.lost,
        "duplicated_bytes": tally.duplicated,
        "flow_directions": tally.flows,
    }


def accuracy_json(verdict: Verdict, tolerance: float = TOLERANCE) -> dict[str, Any]:
    """The verdict as JSON: per class, in total, per observation point, and any problems."""
    return {
        "meaning": "metered ÷ ground truth: bytes stored (counted once) against the lab's nftables counters, "
        "IP-level bytes of TCP and UDP, per billing class",
        "tolerance": tolerance,
        "classes": {name: tally_json(tally) for name, tally in verdict.classes.items()},
        "total": tally_json(verdict.total()),
        "observation_points": {node: tally_json(tally) for node, tally in verdict.points.items()},
        "problems": problems(verdict, tolerance),
    }
