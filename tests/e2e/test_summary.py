"""The accuracy line and the JSON say metered / truth per class, and list whatever is wrong."""

from __future__ import annotations

from kubenetmon.demo.accuracy import Tally, Verdict
from kubenetmon.demo.observed import PairKey
from kubenetmon.demo.summary import accuracy_json, accuracy_line, human_bytes, problems


def tally(truth: int, metered: int) -> Tally:
    counted = Tally()
    counted.add(truth, metered, 0)
    return counted


def test_the_line_names_each_class_with_its_ratio_and_bytes() -> None:
    verdict = Verdict(classes={"same-zone": tally(4_100_000, 4_100_000), "internet": tally(2000, 1000)})
    assert accuracy_line(verdict) == (
        "accuracy: same-zone 1.0000 (4.1 MB / 4.1 MB) · internet 0.5000 (1.0 kB / 2.0 kB)"
    )


def test_bytes_read_in_decimal_units() -> None:
    assert [human_bytes(n) for n in (999, 1000, 1_234_567, 5 * 10**12)] == [
        "999 B",
        "1.0 kB",
        "1.2 MB",
        "5000.0 GB",
    ]


def test_the_json_has_the_ratio_per_class_and_in_total() -> None:
    verdict = Verdict(classes={"cross-zone": tally(1000, 999), "cross-region": tally(500, 500)})
    document = accuracy_json(verdict)
    assert document["classes"]["cross-zone"]["accuracy"] == 0.999
    assert document["classes"]["cross-zone"]["lost_bytes"] == 1
    assert document["total"]["truth_bytes"] == 1500


def test_a_pair_beyond_the_tolerance_is_a_problem() -> None:
    verdict = Verdict(pairs={PairKey(6, "198.18.1.10", "198.18.3.12"): tally(10_000, 9_980)})
    assert problems(verdict) == ["pair tcp 198.18.1.10 -> 198.18.3.12: metered 9980 bytes, truth 10000"]
    assert problems(verdict, tolerance=0.01) == []
