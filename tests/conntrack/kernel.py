"""A throwaway two-namespace setup for kernel tests of the reader: a 'node' namespace that tracks
connections (one nft ct rule, acct=1, events=1) and a 'peer' namespace one veth away.

    node  198.18.0.1/24  fd00:db8::1/64   <-veth->   peer  198.18.0.2/24  fd00:db8::2/64

Names carry a random prefix, nothing touches the root namespace, and both namespaces (with every
process inside them) are deleted on exit, also when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from kubenetmon.conntrack import netns

NODE_V4, PEER_V4 = "198.18.0.1", "198.18.0.2"
NODE_V6, PEER_V6 = "fd00:db8::1", "fd00:db8::2"


def sh(*args: str, namespace: str | None = None, check: bool = True) -> str:
    """Run a command (inside `namespace` when given) and return its stdout."""
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    done = subprocess.run([*prefix, *args], capture_output=True, text=True, check=False, timeout=120)
    if check and done.returncode:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


@dataclass(frozen=True)
class Pair:
    node: str
    peer: str

    def socket_in(self, namespace: str, family: int, kind: int) -> socket.socket:
        return netns.run_in(namespace, lambda: socket.socket(family, kind))

    def sysctl(self, name: str, value: int) -> None:
        sh("sysctl", "-qw", f"net.netfilter.{name}={value}", namespace=self.node)

    def insert(self, spec: str) -> None:
        """`conntrack -I` an entry in the node; `spec` is the rest of the command line."""
        sh("conntrack", "-I", *spec.split(), namespace=self.node)

    def send_udp(self, family: int, dst: str, sport: int, count: int, size: int) -> None:
        """`count` datagrams of `size` payload bytes from the node to `dst` (nobody listens: unreplied)."""
        with self.socket_in(self.node, family, socket.SOCK_DGRAM) as sock:
            sock.bind(("", sport))
            for _ in range(count):
                sock.sendto(b"x" * size, (dst, 9999))

    def tcp_exchange(self, up: int, down: int) -> None:
        """One TCP connection node -> peer:8080, `up` bytes there and `down` bytes back, left open until
        both sides saw the data, then closed."""
        server = self.socket_in(self.peer, socket.AF_INET, socket.SOCK_STREAM)
        server.bind((PEER_V4, 8080))
        server.listen()
        client = self.socket_in(self.node, socket.AF_INET, socket.SOCK_STREAM)
        client.connect((PEER_V4, 8080))
        accepted, _ = server.accept()
        with client, accepted, server:
            client.sendall(b"a" * up)
            _receive(accepted, up)
            accepted.sendall(b"b" * down)
            _receive(client, down)


def _receive(sock: socket.socket, size: int) -> None:
    while size > 0:
        size -= len(sock.recv(size))


@contextlib.contextmanager
def node_and_peer() -> Iterator[Pair]:
    prefix = "kt" + secrets.token_hex(3)
    pair = Pair(prefix + "n", prefix + "p")
    try:
        for name in (pair.node, pair.peer):
            sh("ip", "netns", "add", name)
            sh("ip", "-n", name, "link", "set", "lo", "up")
        sh(
            "ip",
            "link",
            "add",
            "veth0",
            "netns",
            pair.node,
            "type",
            "veth",
            "peer",
            "name",
            "veth0",
            "netns",
            pair.peer,
        )
        for name, v4, v6 in ((pair.node, NODE_V4, NODE_V6), (pair.peer, PEER_V4, PEER_V6)):
            sh("ip", "-n", name, "addr", "add", f"{v4}/24", "dev", "veth0")
            sh("ip", "-n", name, "addr", "add", f"{v6}/64", "dev", "veth0", "nodad")
            sh("ip", "-n", name, "link", "set", "veth0", "up")
        sh(
            "nft",
            "add table inet kt; add chain inet kt track; add rule inet kt track ct state new",
            namespace=pair.node,
        )
        pair.sysctl("nf_conntrack_acct", 1)
        pair.sysctl("nf_conntrack_events", 1)
        pair.sysctl("nf_conntrack_timestamp", 1)
        yield pair
    finally:
        for name in (pair.node, pair.peer):
            for pid in sh("ip", "netns", "pids", name, check=False).split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            sh("ip", "netns", "del", name, check=False)
