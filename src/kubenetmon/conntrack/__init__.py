"""The kernel side: reading the conntrack table and its DESTROY events over netlink.

Knows nothing of agents, gRPC or Kubernetes; `doctor`, the agent and the lab all use it.
"""
