"""What the server knows about the cluster: pods, nodes, services and where their addresses lead."""
