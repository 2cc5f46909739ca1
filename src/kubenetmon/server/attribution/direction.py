"""Which endpoint is local to the observing node, and which observation point counts each byte. Pure.

A flow between nodes is in the conntrack tables of both: the sender's node and the receiver's node see
the same bytes. `counted_here` picks exactly one observation point per byte and per network leg:

* the sender's node, when the sender is a pod or node of this cluster;
* else the receiver's node, when the receiver is one;
* else the node that saw it (bytes between two outside endpoints, seen only by a forwarding node).

With the local endpoint on the observing node this is the rule "an OUT row is counted once; an IN row
is counted once unless its sender is a pod or node of this cluster on another node". Summing bytes over
rows with `count_once` therefore counts every byte once per leg it crossed, across all nodes; summing
OUT rows counts it once at its sender.
"""

from __future__ import annotations

import enum


class Placement(enum.IntEnum):
    """How a flow's endpoints relate to the node that observed it (an IntEnum: hashed in C)."""

    CLIENT_LOCAL = 0
    """The client (orig source) is on the node; also when both are (same-node flow: one entry)."""
    SERVER_LOCAL = 1
    """Only the server (reply source, the real backend) is on the node."""
    PROXIED = 2
    """Neither is, but the node source-NATed the flow to its own address (NodePort or LoadBalancer
    ingress with externalTrafficPolicy Cluster, hairpins): the node is an endpoint of two legs."""
    FORWARDED_CLIENT = 3
    """Neither is and the node only forwarded the flow; the client is reported as local."""
    FORWARDED_SERVER = 4
    """As FORWARDED_CLIENT, with the server reported as local because it is a pod and the client is not."""


def place(
    client_here: bool, server_here: bool, snat_to_node: bool, client_is_pod: bool, server_is_pod: bool
) -> Placement:
    """Decide the local side. Forwarded flows prefer a pod as the local side, else the client."""
    if client_here:
        return Placement.CLIENT_LOCAL
    if server_here:
        return Placement.SERVER_LOCAL
    if snat_to_node:
        return Placement.PROXIED
    if server_is_pod and not client_is_pod:
        return Placement.FORWARDED_SERVER
    return Placement.FORWARDED_CLIENT


def counted_here(
    sender_here: bool, sender_elsewhere: bool, receiver_here: bool, receiver_elsewhere: bool
) -> bool:
    """Whether this observation point is the one that counts bytes from sender to receiver.

    `*_here`: a pod or node of this cluster on the observing node; `*_elsewhere`: one on another node.
    """
    if sender_here:
        return True
    if sender_elsewhere:
        return False
    return receiver_here or not receiver_elsewhere
