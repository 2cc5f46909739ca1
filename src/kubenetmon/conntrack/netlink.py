"""ctnetlink over a raw NETLINK_NETFILTER socket: requests, receive framing, errors.

Constants are those of linux/netlink.h, linux/netfilter/nfnetlink.h and nfnetlink_conntrack.h.
Only this module touches the socket; parse.py reads the attributes of the messages it frames.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator
from typing import Self

from kubenetmon.errors import NetlinkError

NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_BROADCAST_ERROR = 4
SO_RCVBUFFORCE = 33

NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_NEW = 0
IPCTNL_MSG_CT_GET = 1
IPCTNL_MSG_CT_DELETE = 2
NFNLGRP_CONNTRACK_DESTROY = 3

NLM_F_REQUEST = 0x1
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3

NLMSG_HDR = struct.Struct("=IHHII")
NFGEN_HDR_LEN = 4
# nlmsghdr (16) + nfgenmsg (4): where a ctnetlink message's attributes start.
ATTRS_OFFSET = NLMSG_HDR.size + NFGEN_HDR_LEN

CT_GET_TYPE = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET
CT_NEW_TYPE = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW
CT_DELETE_TYPE = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE

# The kernel sizes each dump skb from the reader's buffer, up to about 32 KiB; bigger gains nothing (§7).
DUMP_BUFFER_BYTES = 32768
# Event batches can exceed one page; one recv never returns more than one skb.
EVENT_BUFFER_BYTES = 65536
_ERRNO = struct.Struct("=i")


class SocketOwner:
    """Owns one netlink socket: closes it on `close()` or when used as a context manager exits."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()

    def fileno(self) -> int:
        """The socket's file descriptor, for event-loop readers."""
        return self._sock.fileno()


def open_socket(groups: int = 0) -> socket.socket:
    """A NETLINK_NETFILTER socket in the caller's network namespace, bound to the given multicast groups."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        sock.bind((0, groups))
    except OSError:
        sock.close()
        raise
    return sock


def dump_request(seq: int, family: int = socket.AF_UNSPEC) -> bytes:
    """A plain (never zeroing) IPCTNL_MSG_CT_GET dump request for one family, or all with AF_UNSPEC."""
    length = ATTRS_OFFSET
    header = NLMSG_HDR.pack(length, CT_GET_TYPE, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    return header + struct.pack("=BBH", family, 0, 0)


def messages(buf: memoryview, size: int) -> Iterator[tuple[int, int, int, int]]:
    """(type, flags, offset, end) of each netlink message in the first `size` bytes of `buf`.

    A header that claims less than itself or more than what was received ends the walk: the rest of the
    datagram cannot be framed, and the caller counts it as malformed via `FramingError`.
    """
    off = 0
    unpack = NLMSG_HDR.unpack_from
    while off + NLMSG_HDR.size <= size:
        length, kind, flags, _, _ = unpack(buf, off)
        end = off + length
        if length < NLMSG_HDR.size or end > size:
            raise FramingError(f"netlink message at offset {off} claims {length} bytes of {size - off}")
        yield kind, flags, off, end
        off = (end + 3) & ~3


class FramingError(ValueError):
    """A netlink datagram whose message headers do not add up."""


def error_code(buf: memoryview, off: int, end: int) -> int:
    """The (positive) errno of an NLMSG_ERROR message; 0 is an ACK."""
    if end - off < NLMSG_HDR.size + 4:
        raise FramingError("NLMSG_ERROR shorter than its error code")
    return -int(_ERRNO.unpack_from(buf, off + NLMSG_HDR.size)[0])


def set_receive_buffer(sock: socket.socket, size: int) -> int:
    """Ask for `size` bytes of receive buffer (forced past rmem_max when we may); return what we got."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))


def enable_broadcast_error(sock: socket.socket) -> None:
    """Make a failed delivery to this socket an error the kernel sees, so conntrack redelivers DESTROY.

    The opposite, NETLINK_NO_ENOBUFS, would hide overruns from us; we never set it.
    """
    sock.setsockopt(SOL_NETLINK, NETLINK_BROADCAST_ERROR, 1)


def raise_for_errno(code: int, what: str) -> None:
    """Translate a netlink error code into our exception tree."""
    if code:
        raise NetlinkError(code, f"{what} failed: {errno.errorcode.get(code, '?')} {os.strerror(code)}")
