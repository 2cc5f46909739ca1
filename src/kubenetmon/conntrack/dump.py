"""TableReader: one plain (never zeroing) dump of the whole conntrack table, IPv4 and IPv6.

The reader streams: it yields each entry while its datagram is in the receive buffer and keeps nothing,
so memory does not grow with the table. A `Sighting` is only valid until the generator advances.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
from collections.abc import Iterator

from kubenetmon.conntrack import netlink, parse
from kubenetmon.conntrack.parse import ConntrackEntry, ParseStats

Sighting = tuple[bytes, bytes, memoryview]
"""(identity key, raw counters, the message itself) of one entry; see `parse.scan`."""

_SEQUENCE = itertools.count(1)


class TableReader(netlink.SocketOwner):
    """Reads the conntrack table of the network namespace its socket was opened in."""

    def __init__(self, sock: socket.socket, stats: ParseStats | None = None) -> None:
        super().__init__(sock)
        self.stats = stats if stats is not None else ParseStats()
        self._buffer = bytearray(netlink.DUMP_BUFFER_BYTES)
        self.interrupted_dumps = 0
        """Dumps the kernel flagged NLM_F_DUMP_INTR (the table changed shape under it)."""

    def sightings(self, family: int = socket.AF_UNSPEC) -> Iterator[Sighting]:
        """Every entry of one dump as (key, raw counters, message); malformed ones are only counted."""
        stats = self.stats
        scan = parse.scan
        for buf, off, end in self._messages(family):
            found = scan(buf, off, end, stats)
            if found is not None:
                yield found[0], found[1], buf[off:end]

    def entries(self, family: int = socket.AF_UNSPEC) -> Iterator[ConntrackEntry]:
        """Every entry of one dump, fully decoded (slow; for checks, tests and tools, not the hot path)."""
        for buf, off, end in self._messages(family):
            try:
                yield parse.decode(buf, off, end)
            except parse.MalformedMessage:
                self.stats.malformed_messages += 1

    def _messages(self, family: int) -> Iterator[tuple[memoryview, int, int]]:
        seq = next(_SEQUENCE)
        self._sock.send(netlink.dump_request(seq, family))
        view = memoryview(self._buffer)
        done = False
        try:
            while not done:
                size = self._sock.recv_into(self._buffer)
                try:
                    for kind, flags, off, end in netlink.messages(view, size):
                        if netlink.NLMSG_HDR.unpack_from(view, off)[3] != seq:
                            continue
                        if flags & netlink.NLM_F_DUMP_INTR:
                            self.interrupted_dumps += 1
                        if kind == netlink.NLMSG_DONE:
                            done = True
                        elif kind == netlink.NLMSG_ERROR:
                            done = True
                            netlink.raise_for_errno(netlink.error_code(view, off, end), "conntrack dump")
                        elif kind == netlink.CT_NEW_TYPE:
                            yield view, off, end
                except netlink.FramingError:
                    self.stats.malformed_messages += 1
        finally:
            if not done:
                self._read_to_end(seq)

    def _read_to_end(self, seq: int) -> None:
        # The kernel refuses a new dump (EBUSY) on a socket whose dump was not read to the end.
        view = memoryview(self._buffer)
        while True:
            size = self._sock.recv_into(self._buffer)
            with contextlib.suppress(netlink.FramingError):
                for kind, _, off, _ in netlink.messages(view, size):
                    same_dump = netlink.NLMSG_HDR.unpack_from(view, off)[3] == seq
                    if same_dump and kind in (netlink.NLMSG_DONE, netlink.NLMSG_ERROR):
                        return
