"""Lab traffic made in-process: TCP transfers, many short connections, long bursty flows, UDP exchanges.

Clients and servers are sockets inside the lab's namespaces (see `sockets`), driven by Python threads,
so no external tool is needed. Clients and targets are pods, external endpoints or nodes themselves
(host network); a target can also be a ClusterIP service (the server then listens on the target port
of every backend, and the result says which one answered).
Every call returns a `FlowResult` with the application bytes and the addresses to find the flow in
conntrack and in the ground truth:

    conntrack orig  = result.client -> result.dialed      (the VIP for a service)
    conntrack reply = result.server -> result.seen_by_server  (the node address under masquerade)
    truth           = lab.ground_truth().flow(node, result.proto, result.client, result.server)
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, replace
from typing import Literal

from kubenetmon.lab.lab import Lab
from kubenetmon.lab.netns import LabError
from kubenetmon.lab.ranges import Family
from kubenetmon.lab.sockets import (
    Address,
    Listeners,
    Place,
    address_of,
    bound_socket,
    open_sockets,
    sockaddr,
)
from kubenetmon.lab.tcp import Served, TcpClient, TcpServer
from kubenetmon.lab.topology import ClusterIPService, External, Node, Pod

Endpoint = Pod | External | Node
"""A host with sockets: a pod, an external, or a node itself (host network)."""
Target = Endpoint | ClusterIPService
Close = Literal["fin", "rst"]
TCP, UDP = 6, 17
_SOCKETS_PER_BATCH = 256


@dataclass(frozen=True, slots=True)
class FlowResult:
    """What one connection or UDP exchange did, at the application level, and its addresses."""

    proto: int
    """6 (TCP) or 17 (UDP)."""
    family: Family
    client: Address
    """The client socket's own address; its port is the conntrack orig source port."""
    dialed: Address
    """Where the client sent: a VIP:port for a service, else the server's address."""
    server: Address
    """The server socket that answered (the backend pod behind a VIP)."""
    seen_by_server: Address
    """The client as the server saw it: `client`, or the node's address and port under masquerade."""
    sent: int
    """Application bytes client -> server."""
    received: int
    """Application bytes server -> client."""
    datagrams_sent: int = 0
    datagrams_received: int = 0
    close: Close | None = None


def _server_places(lab: Lab, target: Target | str, family: Family, port: int | None) -> list[Place]:
    if isinstance(target, ClusterIPService):
        if port is not None and port != target.port:
            raise ValueError(f"service {target.key} listens on port {target.port}, not {port}")
        backends = [lab.topology.pod(key) for key in target.backend_keys]
        return [Place(lab.netns(pod), pod.ip(family), target.target_port) for pod in backends]
    server = lab.resolve(target)
    return [Place(lab.netns(server), server.ip(family), port or 0)]


def _dialed(target: Target | str, family: Family, listeners: Listeners) -> Address:
    if isinstance(target, ClusterIPService):
        return target.vip(family), target.port
    return listeners.places[0].ip, listeners.port


def _client_place(lab: Lab, client: Endpoint | str, family: Family) -> Place:
    endpoint = lab.resolve(client)
    return Place(lab.netns(endpoint), endpoint.ip(family))


def tcp_transfer(
    lab: Lab,
    client: Endpoint | str,
    target: Target | str,
    *,
    family: Family = 4,
    up: int = 0,
    down: int = 0,
    close: Close = "fin",
    port: int | None = None,
    timeout: float = 30.0,
) -> FlowResult:
    """One TCP connection: `up` bytes client -> server, then `down` bytes back, then close by FIN or RST.

    FIN: the client shuts down its side, the server closes after reading EOF, the client closes after
    reading the server's EOF (client ends in TIME_WAIT). RST: the client closes with SO_LINGER 0.
    """
    return tcp_connections(
        lab, client, target, count=1, family=family, up=up, down=down, close=close, port=port, timeout=timeout
    )[0]


def tcp_connections(
    lab: Lab,
    client: Endpoint | str,
    target: Target | str,
    *,
    count: int,
    family: Family = 4,
    up: int = 0,
    down: int = 0,
    close: Close = "fin",
    port: int | None = None,
    client_port: int = 0,
    timeout: float = 30.0,
) -> list[FlowResult]:
    """`count` short-lived TCP connections one after another, each like `tcp_transfer`. A `client_port`
    makes every connection leave from that port (with close="rst" the port is free again at once)."""
    origin = replace(_client_place(lab, client, family), port=client_port)
    with Listeners(_server_places(lab, target, family, port), family, socket.SOCK_STREAM) as listeners:
        server = TcpServer(listeners, connections=count, expect=up, reply=down, timeout=timeout)
        server.start()
        results = []
        try:
            for _ in range(count):
                connection = TcpClient(origin, family, _dialed(target, family, listeners), timeout)
                connection.send(up)
                received = connection.receive(down)
                connection.close(close)
                results.append(_result(connection, server.next_served(timeout), received, close))
        finally:
            server.finish(timeout)
        return results


def _result(connection: TcpClient, served: Served, received: int, close: Close) -> FlowResult:
    if served.received != connection.sent:
        raise LabError(f"TCP {connection.local}: server read {served.received} of {connection.sent} bytes")
    return FlowResult(
        proto=TCP,
        family=connection.family,
        client=connection.local,
        dialed=connection.dialed,
        server=served.local,
        seen_by_server=served.peer,
        sent=connection.sent,
        received=received,
        close=close,
    )


class BurstFlow:
    """A long-lived TCP connection sending bursts in the background; see `start_tcp_bursts`."""

    def __init__(self, connection: TcpClient, server: TcpServer, listeners: Listeners) -> None:
        self.client: Address = connection.local
        """The client address, known as soon as the flow starts."""
        self.dialed: Address = connection.dialed
        self._connection = connection
        self._server = server
        self._listeners = listeners
        self._stop = threading.Event()
        self._failure: list[BaseException] = []
        self._thread: threading.Thread | None = None
        self._result: FlowResult | None = None

    @property
    def sent(self) -> int:
        """Application bytes sent so far."""
        return self._connection.sent

    def start(self, bursts: int, burst_bytes: int, interval: float) -> None:
        """Begin sending on a background thread."""
        self._thread = threading.Thread(
            target=self._run, args=(bursts, burst_bytes, interval), name=f"bursts:{self.client}", daemon=True
        )
        self._thread.start()

    def _run(self, bursts: int, burst_bytes: int, interval: float) -> None:
        try:
            for index in range(bursts):
                if index and self._stop.wait(interval):
                    break
                self._connection.send(burst_bytes)
        except BaseException as exc:  # re-raised by wait()
            self._failure.append(exc)

    def stop(self) -> None:
        """Send no further bursts (the one in progress completes)."""
        self._stop.set()

    def wait(self, timeout: float = 300.0) -> FlowResult:
        """Wait for the last burst, close with FIN, and return the result."""
        if self._result is not None:
            return self._result
        assert self._thread is not None
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise LabError(f"TCP bursts from {self.client} still running after {timeout} s")
        try:
            if self._failure:
                raise self._failure[0]
            self._connection.close("fin")
            served = self._server.next_served(timeout)
            self._result = _result(self._connection, served, 0, "fin")
        finally:
            self._server.finish(timeout)
            self._listeners.close()
        return self._result


def start_tcp_bursts(
    lab: Lab,
    client: Endpoint | str,
    target: Target | str,
    *,
    bursts: int,
    burst_bytes: int,
    interval: float,
    family: Family = 4,
    port: int | None = None,
    timeout: float = 30.0,
) -> BurstFlow:
    """Open one TCP connection and send `bursts` bursts of `burst_bytes`, `interval` seconds apart.

    Returns at once with the connection open (its `client` address known); `wait()` for the result.
    """
    origin = _client_place(lab, client, family)
    listeners = Listeners(_server_places(lab, target, family, port), family, socket.SOCK_STREAM)
    listeners.__enter__()
    server = TcpServer(listeners, connections=1, expect=bursts * burst_bytes, reply=0, timeout=None)
    server.start()
    try:
        connection = TcpClient(origin, family, _dialed(target, family, listeners), timeout)
    except BaseException:
        server.finish(timeout)
        listeners.close()
        raise
    flow = BurstFlow(connection, server, listeners)
    flow.start(bursts, burst_bytes, interval)
    return flow


def udp_exchange(
    lab: Lab,
    client: Endpoint | str,
    target: Target | str,
    *,
    count: int,
    size: int,
    reply_size: int | None = None,
    family: Family = 4,
    port: int | None = None,
    timeout: float = 5.0,
) -> FlowResult:
    """`count` datagrams of `size` bytes client -> server, each answered by one of `reply_size` (default:
    `size`; 0 for no answers), in lock-step, all from one client port: one conntrack entry.

    A datagram that does not arrive within `timeout` raises LabError rather than returning short counts.
    """
    answer = size if reply_size is None else reply_size
    origin = _client_place(lab, client, family)
    with (
        Listeners(_server_places(lab, target, family, port), family, socket.SOCK_DGRAM) as listeners,
        bound_socket(origin, family, socket.SOCK_DGRAM) as sock,
    ):
        sock.settimeout(timeout)
        dialed = _dialed(target, family, listeners)
        payload, response = bytes(size), bytes(answer)
        server: socket.socket | None = None
        peer: Address = ("", 0)
        for index in range(count):
            sock.sendto(payload, sockaddr(family, dialed))
            server, peer = _receive_one(listeners, size, timeout, dialed)
            if answer:
                server.sendto(response, sockaddr(family, peer))
                _receive_answer(sock, answer, index, dialed)
        return FlowResult(
            proto=UDP,
            family=family,
            client=address_of(sock.getsockname()),
            dialed=dialed,
            server=address_of(server.getsockname()) if server else dialed,
            seen_by_server=peer,
            sent=count * size,
            received=count * answer if answer else 0,
            datagrams_sent=count,
            datagrams_received=count if answer else 0,
        )


def _receive_one(
    listeners: Listeners, size: int, timeout: float, dialed: Address
) -> tuple[socket.socket, Address]:
    """The server socket that received the next datagram, and its sender; LabError if none arrives."""
    ready = listeners.ready(timeout)
    if not ready:
        raise LabError(f"UDP to {dialed}: a datagram of {size} bytes was lost")
    data, source = ready[0].recvfrom(65535)
    if len(data) != size:
        raise LabError(f"UDP {address_of(source)} -> {dialed}: a datagram has {len(data)} bytes, sent {size}")
    return ready[0], address_of(source)


def _receive_answer(sock: socket.socket, size: int, index: int, dialed: Address) -> None:
    try:
        data = sock.recv(65535)
    except TimeoutError:
        raise LabError(f"UDP {dialed}: answer {index} lost") from None
    if len(data) != size:
        raise LabError(f"UDP {dialed}: answer {index} has {len(data)} bytes, expected {size}")


def udp_flows(
    lab: Lab,
    client: Endpoint | str,
    target: Target | str,
    *,
    flows: int,
    size: int,
    family: Family = 4,
    port: int | None = None,
    timeout: float = 5.0,
) -> list[FlowResult]:
    """`flows` one-datagram UDP flows of `size` bytes, each from its own client port (no answers).

    Fills a conntrack table quickly: one entry per flow, each with exactly one packet of size + 28/48
    (client ports are distinct within one call; the server port is new for each call).
    """
    origin = _client_place(lab, client, family)
    results: list[FlowResult] = []
    with Listeners(_server_places(lab, target, family, port), family, socket.SOCK_DGRAM) as listeners:
        dialed = _dialed(target, family, listeners)
        payload = bytes(size)
        used: set[int] = set()
        while len(results) < flows:
            batch = min(_SOCKETS_PER_BATCH, flows - len(results))
            for sock in open_sockets(origin, family, socket.SOCK_DGRAM, batch):
                with sock:
                    # A port freed by an earlier batch may come back; reusing it would merge two flows.
                    local = address_of(sock.getsockname())
                    if local[1] in used:
                        continue
                    used.add(local[1])
                    sock.sendto(payload, sockaddr(family, dialed))
                    server, peer = _receive_one(listeners, size, timeout, dialed)
                    results.append(
                        FlowResult(
                            proto=UDP,
                            family=family,
                            client=local,
                            dialed=dialed,
                            server=address_of(server.getsockname()),
                            seen_by_server=peer,
                            sent=size,
                            received=0,
                            datagrams_sent=1,
                        )
                    )
    return results
