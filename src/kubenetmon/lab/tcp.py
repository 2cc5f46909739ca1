"""The two ends of a lab TCP connection: a client socket in one namespace, a server thread in others.

Protocol, fixed so both ends know when they are done: the client sends its bytes; the server reads the
expected number (or until EOF), sends its reply bytes, then reads until EOF or reset and closes.
"""

from __future__ import annotations

import queue
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Literal

from kubenetmon.lab.netns import LabError
from kubenetmon.lab.ranges import Family
from kubenetmon.lab.sockets import (
    Address,
    Listeners,
    Place,
    address_of,
    bound_socket,
    drain,
    recv_exactly,
    send_zeros,
    sockaddr,
)

CHUNK = bytes(256 * 1024)
_LINGER_RESET = struct.pack("ii", 1, 0)


class TcpClient:
    """A connected client socket inside the client's namespace."""

    def __init__(self, origin: Place, family: Family, dialed: Address, timeout: float) -> None:
        self.family = family
        self.dialed = dialed
        self.sent = 0
        self._buffer = bytearray(len(CHUNK))
        self._sock = bound_socket(origin, family, socket.SOCK_STREAM)
        try:
            self._sock.settimeout(timeout)
            self._sock.connect(sockaddr(family, dialed))
        except OSError as exc:
            self._sock.close()
            raise LabError(f"TCP connect from {origin.netns} to {dialed}: {exc}") from exc
        self.local = address_of(self._sock.getsockname())

    def send(self, size: int) -> None:
        """Send `size` bytes."""
        send_zeros(self._sock, size, CHUNK)
        self.sent += size

    def receive(self, size: int) -> int:
        """Read `size` bytes (fewer only if the server closed early); returns how many arrived."""
        return recv_exactly(self._sock, size, self._buffer)

    def close(self, how: Literal["fin", "rst"]) -> None:
        """FIN: shut down, wait for the server's FIN, close. RST: close with SO_LINGER 0."""
        try:
            if how == "rst":
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            else:
                self._sock.shutdown(socket.SHUT_WR)
                drain(self._sock, self._buffer)
        finally:
            self._sock.close()


@dataclass(frozen=True, slots=True)
class Served:
    """One connection as the server handled it."""

    local: Address
    peer: Address
    received: int
    sent: int


class TcpServer:
    """Accepts `connections` connections on `listeners`, one at a time, on a background thread."""

    def __init__(
        self, listeners: Listeners, *, connections: int, expect: int, reply: int, timeout: float | None
    ) -> None:
        self._listeners = listeners
        self._connections = connections
        self._expect = expect
        self._reply = reply
        self._timeout = timeout
        self._served: queue.Queue[Served] = queue.Queue()
        self._stop = threading.Event()
        self._failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="lab-tcp-server", daemon=True)

    def start(self) -> None:
        """Start accepting."""
        self._thread.start()

    def _run(self) -> None:
        buffer = bytearray(len(CHUNK))
        try:
            for _ in range(self._connections):
                listener = self._wait_for_connection()
                if listener is None:
                    return
                conn, peer = listener.accept()
                with conn:
                    conn.settimeout(self._timeout)
                    received = recv_exactly(conn, self._expect, buffer)
                    send_zeros(conn, self._reply, CHUNK)
                    received += drain(conn, buffer)
                    local = address_of(conn.getsockname())
                self._served.put(Served(local, address_of(peer), received, self._reply))
        except BaseException as exc:  # re-raised on the caller's thread
            self._failure.append(exc)

    def _wait_for_connection(self) -> socket.socket | None:
        deadline = None if self._timeout is None else time.monotonic() + self._timeout
        while not self._stop.is_set():
            ready = self._listeners.ready(0.1)
            if ready:
                return ready[0]
            if deadline is not None and time.monotonic() > deadline:
                raise LabError(f"no TCP connection arrived on port {self._listeners.port}")
        return None

    def next_served(self, timeout: float) -> Served:
        """The next connection the server finished, waiting up to `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return self._served.get(timeout=0.05)
            except queue.Empty:
                if self._failure:
                    raise self._failure[0] from None
        raise LabError(f"TCP server on port {self._listeners.port} finished no connection in {timeout} s")

    def finish(self, timeout: float) -> None:
        """Stop accepting and wait for the thread; re-raise its error, if any."""
        self._stop.set()
        self._thread.join(timeout)
        if self._failure:
            raise self._failure[0]
