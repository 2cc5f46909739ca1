"""Run a short call inside a named network namespace (/run/netns/NAME) without moving the process.

Python 3.11 has no os.setns, so a throwaway thread calls setns(2) through ctypes, runs the call (open a
socket, read a sysctl) and exits. Sockets keep the namespace they were created in, so the process's
own namespace is never touched. `None` as the name means "the namespace we are running in".
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from kubenetmon.errors import ConntrackError

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = Path("/run/netns")
T = TypeVar("T")


def netns_path(name: str) -> Path:
    """The bind-mount path `ip netns` uses for a named namespace; rejects names that are paths."""
    if not name or "/" in name or name in (".", ".."):
        raise ConntrackError(f"invalid network namespace name {name!r}")
    return NETNS_RUN_DIR / name


def run_in(name: str | None, call: Callable[[], T]) -> T:
    """Run `call` with the network namespace `name` as the current one, in a throwaway thread."""
    if name is None:
        return call()
    path = netns_path(name)
    outcome: list[T] = []
    failure: list[BaseException] = []

    def enter_and_call() -> None:
        try:
            _setns(path)
            outcome.append(call())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=enter_and_call, name=f"netns {name}", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


def _setns(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise ConntrackError(f"network namespace {path.name!r} does not exist ({path} is missing)") from exc
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise ConntrackError(f"setns({path}) failed: {os.strerror(code)}; this needs CAP_SYS_ADMIN")
    finally:
        os.close(fd)
