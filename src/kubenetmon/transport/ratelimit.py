"""Log lines that would repeat on every batch or reconnect, at most once per interval per key."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RateLimitedLog:
    """Logs the first message per key, then at most one per `interval` seconds, saying how many similar
    messages were held back in between."""

    def __init__(
        self, logger: logging.Logger, interval: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, level: int, key: str, message: str, *args: object) -> None:
        """Log `message % args` at `level` unless `key` was logged less than `interval` ago."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        held_back = self._suppressed.pop(key, 0)
        if held_back:
            message += " (%d similar messages held back)"
            args = (*args, held_back)
        self._logger.log(level, message, *args)
