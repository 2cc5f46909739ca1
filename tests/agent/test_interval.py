"""Interval boundaries fall on wall-clock multiples of the interval; the first one is partial."""

from __future__ import annotations

from kubenetmon.agent.interval import IntervalClock


def test_the_first_interval_runs_from_the_start_to_the_next_multiple() -> None:
    clock = IntervalClock(5.0, start=1002.3)
    assert clock.next_end() == 1005.0
    assert clock.close(clock.boundary_for(1005.01)) == (1002.3, 1005.0)
    assert clock.next_end() == 1010.0


def test_a_start_on_a_boundary_gives_a_full_first_interval() -> None:
    assert IntervalClock(5.0, start=1000.0).next_end() == 1005.0


def test_a_loop_that_fell_behind_closes_one_longer_interval_on_the_latest_boundary() -> None:
    clock = IntervalClock(5.0, start=1000.0)
    assert clock.close(clock.boundary_for(1017.2)) == (1000.0, 1015.0)


def test_the_last_interval_ends_at_shutdown() -> None:
    clock = IntervalClock(5.0, start=1005.0)
    assert clock.close(1007.25) == (1005.0, 1007.25)
