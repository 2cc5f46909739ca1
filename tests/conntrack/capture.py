"""Capture real ctnetlink messages from the kernel into tests/conntrack/fixtures/ (run as root):

    python -m tests.conntrack.capture

It builds the throwaway namespace pair of `tests.conntrack.kernel`, makes a TCP v4 flow with traffic both
ways, a UDP v6 flow, an ICMP entry, a protocol-253 entry in zone 7 with mark 5, dumps the table with a
plain IPCTNL_MSG_CT_GET and saves the received datagrams as `dump.bin`; then deletes the UDP entry and
saves the DESTROY event datagram as `destroy.bin`. `expected.json` records what `conntrack -L` printed for
the same entries, so the parser tests compare against the kernel's own tool, not against our parser.
"""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

from kubenetmon.conntrack import netlink, netns
from tests.conntrack.kernel import NODE_V4, PEER_V4, PEER_V6, Pair, node_and_peer, sh

FIXTURES = Path(__file__).parent / "fixtures"


def make_flows(pair: Pair) -> None:
    pair.tcp_exchange(up=3000, down=700)
    pair.send_udp(socket.AF_INET6, PEER_V6, 45000, 3, 500)
    pair.insert(f"-p icmp -s {NODE_V4} -d {PEER_V4} --icmp-type 8 --icmp-code 0 --icmp-id 77 -t 300")
    pair.insert(f"-p 253 -s {NODE_V4} -d {PEER_V4} -t 300 --zone 7 --mark 5")


def dump_datagrams(pair: Pair) -> list[bytes]:
    sock = netns.run_in(pair.node, netlink.open_socket)
    with sock:
        sock.send(netlink.dump_request(1))
        datagrams = []
        while True:
            data = sock.recv(65536)
            datagrams.append(data)
            kinds = [kind for kind, _, _, _ in netlink.messages(memoryview(data), len(data))]
            if netlink.NLMSG_DONE in kinds:
                return datagrams


def conntrack_listing(pair: Pair) -> list[dict[str, object]]:
    """conntrack -L -o id as dicts of the fields the tests compare."""
    rows = []
    for line in sh("conntrack", "-L", "-o", "id", namespace=pair.node).splitlines():
        fields = dict(re.findall(r"(\w+)=(\S+)", line))
        srcs, dsts = re.findall(r"src=(\S+)", line), re.findall(r"dst=(\S+)", line)
        counts = [int(v) for v in re.findall(r"(?:packets|bytes)=(\d+)", line)]
        rows.append(
            {
                "proto": int(line.split()[1]),
                "orig_src": srcs[0],
                "orig_dst": dsts[0],
                "reply_src": srcs[1],
                "reply_dst": dsts[1],
                "id": int(fields["id"]),
                "zone": int(fields.get("zone", 0)),
                "mark": int(fields.get("mark", 0)),
                "counters": counts,
            }
        )
    return rows


def main() -> None:
    FIXTURES.mkdir(exist_ok=True)
    with node_and_peer() as pair:
        make_flows(pair)
        listener = netns.run_in(pair.node, netlink.open_socket)
        listener.setsockopt(
            netlink.SOL_NETLINK, netlink.NETLINK_ADD_MEMBERSHIP, netlink.NFNLGRP_CONNTRACK_DESTROY
        )
        (FIXTURES / "dump.bin").write_bytes(b"".join(dump_datagrams(pair)))
        (FIXTURES / "expected.json").write_text(json.dumps(conntrack_listing(pair), indent=1) + "\n")
        sh("conntrack", "-D", "-p", "udp", "--orig-port-src", "45000", namespace=pair.node)
        time.sleep(0.2)
        (FIXTURES / "destroy.bin").write_bytes(listener.recv(65536))
        listener.close()


if __name__ == "__main__":
    main()
