"""Sockets that live in lab namespaces, and the listening side of lab traffic.

`open_socket` creates a socket inside a namespace (on a thread that entered it); the socket stays
there and is driven from ordinary threads. `Listeners` binds the same port on one or more server
addresses (one per backend of a service) and serialises users of a fixed port within this process,
so two tests sending to one service never steal each other's connections.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from kubenetmon.lab.netns import in_netns
from kubenetmon.lab.ranges import Family

Address = tuple[str, int]
"""(IP address, port), as the lab reports endpoints."""

_port_locks: dict[tuple[str, int, int], threading.Lock] = {}
_port_locks_guard = threading.Lock()


@dataclass(frozen=True, slots=True)
class Place:
    """Where a socket is opened: a namespace and the address to bind in it (port 0: any free port)."""

    netns: str
    ip: str
    port: int = 0


def address_family(family: Family) -> socket.AddressFamily:
    """AF_INET or AF_INET6."""
    return socket.AF_INET if family == 4 else socket.AF_INET6


def sockaddr(family: Family, address: Address) -> tuple[str, int] | tuple[str, int, int, int]:
    """The tuple `bind`/`connect` want for an address of `family`."""
    return address if family == 4 else (address[0], address[1], 0, 0)


def address_of(sockname: tuple[object, ...]) -> Address:
    """(ip, port) from a getsockname()/getpeername()/recvfrom() tuple of either family."""
    return str(sockname[0]), int(str(sockname[1]))


def open_socket(netns: str, family: Family, kind: socket.SocketKind) -> socket.socket:
    """A new socket created inside `netns`, usable from any thread."""
    return in_netns(netns, lambda: socket.socket(address_family(family), kind))


def open_sockets(place: Place, family: Family, kind: socket.SocketKind, count: int) -> list[socket.socket]:
    """`count` sockets created inside `place.netns` in one go, each bound to `place.ip` and a free port."""

    def create() -> list[socket.socket]:
        made: list[socket.socket] = []
        try:
            for _ in range(count):
                made.append(socket.socket(address_family(family), kind))
                made[-1].bind(sockaddr(family, (place.ip, 0)))
        except BaseException:
            for sock in made:
                sock.close()
            raise
        return made

    return in_netns(place.netns, create)


def bound_socket(place: Place, family: Family, kind: socket.SocketKind) -> socket.socket:
    """A socket in `place.netns` bound to `place.ip`:`place.port`."""
    sock = open_socket(place.netns, family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr(family, (place.ip, place.port)))
    except BaseException:
        sock.close()
        raise
    return sock


class Listeners:
    """Server sockets on one port at several places; use as a context manager.

    TCP sockets listen; UDP sockets are just bound. `port` is the one port shared by all places (the
    places' own port when they name one, else a free port picked at the first place).
    """

    def __init__(self, places: Sequence[Place], family: Family, kind: socket.SocketKind) -> None:
        self.places = list(places)
        self.family = family
        self.kind = kind
        self.sockets: list[socket.socket] = []
        self._locks: list[threading.Lock] = []
        self.port = 0

    def __enter__(self) -> Listeners:
        fixed = sorted({(p.netns, int(self.kind), p.port) for p in self.places if p.port})
        for key in fixed:
            lock = _lock_for(key)
            lock.acquire()
            self._locks.append(lock)
        try:
            for place in self.places:
                port = place.port or self.port
                sock = bound_socket(Place(place.netns, place.ip, port), self.family, self.kind)
                self.sockets.append(sock)
                self.port = address_of(sock.getsockname())[1]
                if self.kind == socket.SOCK_STREAM:
                    sock.listen(128)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every socket and release the port locks."""
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()
        for lock in reversed(self._locks):
            lock.release()
        self._locks.clear()

    def ready(self, timeout: float) -> list[socket.socket]:
        """The sockets that have a connection or datagram waiting within `timeout` seconds."""
        with selectors.DefaultSelector() as selector:
            for sock in self.sockets:
                selector.register(sock, selectors.EVENT_READ)
            return [key.fileobj for key, _ in selector.select(timeout)]  # type: ignore[misc]


def _lock_for(key: tuple[str, int, int]) -> threading.Lock:
    with _port_locks_guard:
        return _port_locks.setdefault(key, threading.Lock())


def recv_exactly(sock: socket.socket, size: int, buffer: bytearray) -> int:
    """Read up to `size` bytes, stopping early only at EOF or reset; returns how many arrived."""
    view = memoryview(buffer)
    got = 0
    while got < size:
        try:
            n = sock.recv_into(view, min(len(buffer), size - got))
        except ConnectionResetError:
            break
        if n == 0:
            break
        got += n
    return got


def drain(sock: socket.socket, buffer: bytearray) -> int:
    """Read until EOF or reset; returns the bytes read."""
    total = 0
    with contextlib.suppress(ConnectionResetError):
        while n := sock.recv_into(buffer):
            total += n
    return total


def send_zeros(sock: socket.socket, size: int, chunk: bytes) -> None:
    """Send `size` zero bytes."""
    view = memoryview(chunk)
    left = size
    while left > 0:
        step = min(left, len(view))
        sock.sendall(view[:step])
        left -= step
