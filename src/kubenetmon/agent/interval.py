"""Interval boundaries on wall-clock multiples of the interval (UTC), the first and last ones partial."""

from __future__ import annotations

import math


class IntervalClock:
    """Hands out consecutive [start, end) intervals whose inner boundaries are multiples of `length`."""

    def __init__(self, length: float, start: float) -> None:
        self.length = length
        self.start = start
        """Start of the open interval (the agent's start time for the first one)."""

    def next_end(self) -> float:
        """The first boundary strictly after the open interval's start."""
        return (math.floor(self.start / self.length) + 1) * self.length

    def boundary_for(self, now: float) -> float:
        """The end to give the open interval when closing it at `now` on schedule.

        Normally `next_end()`. If the loop fell behind by whole intervals, the latest boundary not after
        `now`, so one interval spans the gap instead of inventing empty ones.
        """
        return max(self.next_end(), math.floor(now / self.length) * self.length)

    def close(self, end: float) -> tuple[float, float]:
        """Close the open interval at `end` (a boundary, or the shutdown time); return its (start, end)."""
        start, self.start = self.start, end
        return start, end
