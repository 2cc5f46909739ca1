"""A Kubernetes-like topology in network namespaces, with nftables ground-truth byte counters.

    from kubenetmon.lab import Lab, Topology, traffic

    with Lab(Topology.two_nodes()) as lab:
        ...

Modules: `topology` (what to build), `catalog` (ready topologies), `plan` (the commands), `netns`
(namespace plumbing), `nft` (node rulesets), `truth` (ground-truth records), `lab` (`Lab`),
`state` (records for `kubenetmon lab down`), `traffic` (in-process traffic generators).
"""

from kubenetmon.lab.lab import Lab, Where
from kubenetmon.lab.netns import LabError
from kubenetmon.lab.topology import ClusterIPService, External, Node, Pod, Topology
from kubenetmon.lab.truth import FlowTruth, GroundTruth, TruthRecord

__all__ = [
    "ClusterIPService",
    "External",
    "FlowTruth",
    "GroundTruth",
    "Lab",
    "LabError",
    "Node",
    "Pod",
    "Topology",
    "TruthRecord",
    "Where",
]
