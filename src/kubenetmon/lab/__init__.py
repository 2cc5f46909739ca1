"""A Kubernetes-like topology in network namespaces, with nftables ground-truth byte counters."""
