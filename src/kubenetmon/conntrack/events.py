"""DestroyListener: the ctnetlink DESTROY multicast group, which carries each flow's final counters.

The socket is non-blocking; `drain` returns what is queued now. Its receive buffer is sized for bursts,
NETLINK_BROADCAST_ERROR makes the kernel retry DESTROY delivery instead of dropping it, and an overrun
(ENOBUFS) is counted in `overflows`, never ignored.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

from kubenetmon.conntrack import netlink, parse
from kubenetmon.conntrack.dump import Sighting
from kubenetmon.conntrack.parse import ParseStats

DEFAULT_RECEIVE_BUFFER = 16 * 1024 * 1024


class DestroyListener(netlink.SocketOwner):
    """Receives DESTROY events from the network namespace its socket was opened in."""

    def __init__(
        self,
        sock: socket.socket,
        stats: ParseStats | None = None,
        receive_buffer: int = DEFAULT_RECEIVE_BUFFER,
    ) -> None:
        super().__init__(sock)
        self.stats = stats if stats is not None else ParseStats()
        netlink.enable_broadcast_error(sock)
        self.receive_buffer = netlink.set_receive_buffer(sock, receive_buffer)
        sock.setsockopt(
            netlink.SOL_NETLINK, netlink.NETLINK_ADD_MEMBERSHIP, netlink.NFNLGRP_CONNTRACK_DESTROY
        )
        sock.setblocking(False)
        self._buffer = bytearray(netlink.EVENT_BUFFER_BYTES)
        self.overflows = 0
        """Times the kernel reported ENOBUFS: events were dropped for this socket."""

    def drain(self) -> Iterator[Sighting]:
        """Every DESTROY event queued now, as (key, final raw counters, message); stops when none is left."""
        view = memoryview(self._buffer)
        stats = self.stats
        while True:
            try:
                size = self._sock.recv_into(self._buffer)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                self.overflows += 1
                continue
            try:
                for kind, _, off, end in netlink.messages(view, size):
                    if kind != netlink.CT_DELETE_TYPE:
                        continue
                    found = parse.scan(view, off, end, stats)
                    if found is not None:
                        yield found[0], found[1], view[off:end]
            except netlink.FramingError:
                stats.malformed_messages += 1
