"""Pure derivations of identity: a pod's workload and app, a node's zone, region, cloud and machine.

Everything here works from the pod or node object alone. The server's ClusterRole is exactly
list/watch on pods, nodes, services and EndpointSlices, so owners are never fetched: a ReplicaSet's
Deployment and a Job's CronJob are recognised by the names their controllers give them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

POD_TEMPLATE_HASH = "pod-template-hash"
APP_LABELS = ("app.kubernetes.io/name", "app", "k8s-app")
ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
REGION_LABELS = ("topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region")

# The CronJob controller names each Job "<cronjob>-<scheduled time in minutes since the epoch>".
# Eight digits cover 1989-2160, so a Job someone named "backup-2" is not mistaken for a CronJob's.
_CRONJOB_JOB_NAME = re.compile(r"^(?P<cronjob>.+)-(?P<minutes>\d{8})$")

# spec.providerID schemes and the cloud names attribution uses for them.
_PROVIDER_CLOUDS = {"aws": "aws", "gce": "gcp", "azure": "azure"}


@dataclass(frozen=True, slots=True)
class Owner:
    """One ownerReference: just the kind and name."""

    kind: str
    name: str


def workload_of(pod_name: str, node: str, labels: Mapping[str, str], owner: Owner | None) -> tuple[str, str]:
    """(workload name, workload kind) of a pod, from its controlling owner and labels.

    - ReplicaSet whose name is "<deployment>-<pod-template-hash>": the Deployment; other ReplicaSets stay
      ReplicaSets (created by hand, or by a controller that does not hash its template).
    - Job whose name is "<cronjob>-<8 digits>": the CronJob (a naming heuristic; see `_CRONJOB_JOB_NAME`).
    - Node (a kubelet's mirror of a static pod, named "<name>-<node>"): ("<name>", "StaticPod").
    - StatefulSet, DaemonSet, Job and any other kind: the owner itself.
    - No owner: the bare pod, (pod name, "Pod").
    """
    if owner is None:
        return pod_name, "Pod"
    if owner.kind == "ReplicaSet":
        template_hash = labels.get(POD_TEMPLATE_HASH, "")
        suffix = f"-{template_hash}"
        if template_hash and owner.name.endswith(suffix) and len(owner.name) > len(suffix):
            return owner.name[: -len(suffix)], "Deployment"
        return owner.name, "ReplicaSet"
    if owner.kind == "Job":
        match = _CRONJOB_JOB_NAME.match(owner.name)
        if match:
            return match["cronjob"], "CronJob"
        return owner.name, "Job"
    if owner.kind == "Node":
        suffix = f"-{node}"
        if node and pod_name.endswith(suffix) and len(pod_name) > len(suffix):
            return pod_name[: -len(suffix)], "StaticPod"
        return pod_name, "StaticPod"
    return owner.name, owner.kind


def app_of(labels: Mapping[str, str]) -> str:
    """The application name from the first of app.kubernetes.io/name, app, k8s-app that is set."""
    return first_label(labels, APP_LABELS)


def first_label(labels: Mapping[str, str], keys: tuple[str, ...]) -> str:
    """The value of the first of `keys` present and non-empty in `labels`, or ""."""
    for key in keys:
        value = labels.get(key)
        if value:
            return value
    return ""


@dataclass(frozen=True, slots=True)
class ProviderId:
    """What spec.providerID says about a node's machine."""

    cloud: str
    """"aws", "gcp", "azure", or "" for a scheme we do not recognise."""
    zone: str
    """The zone the ID embeds (AWS and GCE do), else ""."""
    region: str
    """The region that zone belongs to (us-west-2a -> us-west-2, europe-west1-b -> europe-west1), else ""."""
    instance_id: str


def parse_provider_id(provider_id: str) -> ProviderId:
    """Split a providerID into cloud, zone and instance ID.

    aws:///us-west-2a/i-0123456789abcdef0 -> aws, us-west-2a, us-west-2, i-0123456789abcdef0
    gce://my-project/europe-west1-b/gke-node-1 -> gcp, europe-west1-b, europe-west1, gke-node-1
    azure:///subscriptions/S/resourceGroups/R/providers/Microsoft.Compute/virtualMachines/vm-1
        -> azure, "", "", vm-1
    azure:///.../virtualMachineScaleSets/pool/virtualMachines/3 -> azure, "", "", pool_3 (VMSS instance name)
    Anything else (kind://, openstack:///uuid) keeps its last path segment as the instance ID.
    """
    scheme, sep, rest = provider_id.partition("://")
    if not sep:
        return ProviderId("", "", "", "")
    segments = [segment for segment in rest.split("/") if segment]
    cloud = _PROVIDER_CLOUDS.get(scheme, "")
    if not segments:
        return ProviderId(cloud, "", "", "")
    if scheme == "aws" and len(segments) >= 2:
        zone = segments[-2]
        region = zone[:-1] if zone[-1:].isalpha() and zone[-2:-1].isdigit() else ""
        return ProviderId(cloud, zone, region, segments[-1])
    if scheme == "gce" and len(segments) >= 3:
        zone = segments[1]
        return ProviderId(cloud, zone, zone.rpartition("-")[0], segments[-1])
    if scheme == "azure":
        lowered = [segment.lower() for segment in segments]
        if (
            len(segments) >= 4
            and lowered[-4] == "virtualmachinescalesets"
            and lowered[-2] == "virtualmachines"
        ):
            return ProviderId(cloud, "", "", f"{segments[-3]}_{segments[-1]}")
    return ProviderId(cloud, "", "", segments[-1])
