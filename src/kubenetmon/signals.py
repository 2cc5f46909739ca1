"""Flag-only signal handling for the daemons: SIGTERM and SIGINT ask for a graceful stop, nothing more."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def stop_on_signals(request_stop: Callable[[], None]) -> Iterator[None]:
    """While active, SIGTERM and SIGINT call `request_stop` in the running loop (which should only set a
    flag); the loop's handlers are removed afterwards so tests and embedding programs keep theirs."""
    loop = asyncio.get_running_loop()
    handled = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        # Not available off the main thread or on some platforms; then the default handling stays.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, request_stop)
            handled.append(signum)
    try:
        yield
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
