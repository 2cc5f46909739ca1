"""Agent <-> server wire: protobuf codec, mTLS, the agent's spool and the gRPC client and service."""
