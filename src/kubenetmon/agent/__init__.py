"""The node daemon: conntrack entries -> exact per-interval deltas -> a record sink."""
