"""The pod-identity path of the two charts, end to end: an agent pod's certificate names the pod (what the
agent chart asks cert-manager's csi-driver for), and the real `kubenetmon server`, started with the
environment the server chart renders, lets it report for exactly the node the Kubernetes API places the
pod on.

The parts that need a real cluster's controllers are played by the test: it signs the certificates
cert-manager would (server: the rendered Certificate's names; agent: the rendered csi volume's URI SAN
with the pod's namespace and name filled in), creates the agent pod the DaemonSet controller would, and
gives the server its ServiceAccount's token as a kubeconfig instead of the in-cluster files. The server
also keeps the bundled cloud ranges (no downloads: tests never reach the internet).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kubenetmon.records import Batch
from kubenetmon.transport import certificates
from kubenetmon.transport.client import ClientSettings, GrpcSink
from kubenetmon.transport.tls import TlsSettings
from tests.charts.releases import Release, node_object, pod_object
from tests.charts.rendering import Profile, objects, only, template
from tests.charts.server_process import RunningServer, local_pod, server_process
from tests.kube.control_plane import ControlPlane
from tests.kube.identity import ClientIdentity
from tests.kube.namespaces import create_namespace, delete_namespace
from tests.transport.conftest import make_records

pytestmark = [pytest.mark.apiserver, pytest.mark.helm, pytest.mark.slow]

AGENT = Profile("kubenetmon-agent", None)
SERVER = Profile("kubenetmon-server", None)


@dataclass(frozen=True, slots=True)
class Placement:
    """Nodes and pods created in the API: the agent pod runs on `agent_node`."""

    agent_node: str
    other_node: str
    agent_pod: str
    outsider_namespace: str
    outsider_pod: str


@dataclass(frozen=True, slots=True)
class Setup:
    """The running server, the rendered agent, the CA that signs everything, and where pods are."""

    server: RunningServer
    agent: list[dict[str, Any]]
    ca: certificates.Issuer
    placement: Placement


def _pod_from_daemonset(daemonset: dict[str, Any], name: str, node: str) -> dict[str, Any]:
    """The pod the DaemonSet controller would create on `node`."""
    template_ = daemonset["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": template_["metadata"]["labels"]},
        "spec": {**template_["spec"], "nodeName": node},
    }


def _write_tls(directory: Path, cert: x509.Certificate, key: Any, ca: certificates.Issuer) -> None:
    """The three files of a cert-manager Secret or csi-driver volume: tls.crt, tls.key and ca.crt."""
    certificates.write_pair(directory, "tls.crt", "tls.key", cert, key)
    (directory / "ca.crt").write_bytes(ca.cert.public_bytes(serialization.Encoding.PEM))


@pytest.fixture(scope="module")
def placement(kube_control_plane: ControlPlane, server: Release, helm: Path) -> Iterator[Placement]:
    agent_node, other_node = (f"charts-node-{secrets.token_hex(3)}" for _ in range(2))
    outsider_namespace = create_namespace(kube_control_plane, prefix="outsider")
    placed = Placement(agent_node, other_node, "kubenetmon-agent-x7k2p", outsider_namespace, "impostor")
    daemonset = only(_agent_objects(helm, server), "DaemonSet")
    try:
        for node in (agent_node, other_node):
            kube_control_plane.request("POST", "/api/v1/nodes", node_object(node)).ok()
        kube_control_plane.request(
            "POST",
            f"/api/v1/namespaces/{server.namespace}/pods",
            _pod_from_daemonset(daemonset, placed.agent_pod, agent_node),
        ).ok()
        kube_control_plane.request(
            "POST",
            f"/api/v1/namespaces/{outsider_namespace}/pods",
            pod_object(placed.outsider_pod, agent_node),
        ).ok()
        yield placed
    finally:
        delete_namespace(kube_control_plane, outsider_namespace)
        for node in (agent_node, other_node):
            kube_control_plane.request("DELETE", f"/api/v1/nodes/{node}")


def _agent_objects(helm: Path, server: Release) -> list[dict[str, Any]]:
    """The agent chart in the server's namespace, pointed at the server's Service (as its NOTES say)."""
    address = {"server": {"address": f"{server.fullname}.{server.namespace}.svc:8884"}}
    return objects(template(helm, AGENT, address, release="kubenetmon-agent", namespace=server.namespace))


@pytest.fixture(scope="module")
def setup(
    helm: Path,
    server: Release,
    server_account: ClientIdentity,
    placement: Placement,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("pod-identity")
    ca = certificates.new_ca("kubenetmon-server CA")
    rendered = objects(template(helm, SERVER, release=server.name, namespace=server.namespace))
    pod = local_pod(rendered, "server", root / "server")
    # cert-manager: the server Certificate the chart renders, into the Secret volume's files.
    spec = only([o for o in rendered if o["metadata"]["name"].endswith("-tls")], "Certificate")["spec"]
    assert spec["usages"] == ["digital signature", "server auth"]
    cert, key = certificates.issue(ca, server.fullname, spec["dnsNames"], server=True)
    _write_tls(pod.volumes["tls"], cert, key, ca)
    environment = {
        **pod.environment,
        "KUBENETMON_KUBECONFIG": str(server_account.kubeconfig),
        "KUBENETMON_CLOUD_RANGES_REFRESH": "0",
    }
    with server_process(environment, root / "server.log") as running:
        yield Setup(running, _agent_objects(helm, server), ca, placement)


def _agent_client(setup: Setup, namespace: str, pod_name: str, root: Path) -> ClientSettings:
    """The agent's gRPC client with the files csi-driver would write for pod `namespace/pod_name`."""
    pod = local_pod(setup.agent, "agent", root, {"spec.nodeName": setup.placement.agent_node})
    daemonset = only(setup.agent, "DaemonSet")
    volume = next(v for v in daemonset["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls")
    attributes = volume["csi"]["volumeAttributes"]
    uri = attributes["csi.cert-manager.io/uri-sans"]
    uri = uri.replace("${POD_NAMESPACE}", namespace).replace("${POD_NAME}", pod_name)
    assert "client auth" in attributes["csi.cert-manager.io/key-usages"]
    cert, key = certificates.issue(setup.ca, pod_name, [uri], server=False)
    _write_tls(pod.volumes["tls"], cert, key, setup.ca)
    env = pod.environment
    tls = TlsSettings(
        cert=Path(env["KUBENETMON_TLS_CERT"]),
        key=Path(env["KUBENETMON_TLS_KEY"]),
        ca=Path(env["KUBENETMON_TLS_CA"]),
        # The agent dials the Service name; here the same name is checked on a loopback connection.
        server_name=env["KUBENETMON_SERVER"].rsplit(":", 1)[0],
    )
    return ClientSettings(target=setup.server.grpc_target, tls=tls)


async def _delivered(client: ClientSettings, node: str) -> bool:
    """Whether the server acknowledged one batch claiming `node`."""
    sink = GrpcSink.open(client)
    await sink.submit(Batch(node, "", 0, make_records(node, 1)))
    await sink.aclose(timeout=3)
    return sink.pending_batches == 0


async def test_an_agent_pod_reports_for_the_node_it_runs_on(
    setup: Setup, server: Release, tmp_path: Path
) -> None:
    client = _agent_client(setup, server.namespace, setup.placement.agent_pod, tmp_path)
    assert await _delivered(client, setup.placement.agent_node)


async def test_an_agent_pod_cannot_report_for_another_node(
    setup: Setup, server: Release, tmp_path: Path
) -> None:
    client = _agent_client(setup, server.namespace, setup.placement.agent_pod, tmp_path)
    assert not await _delivered(client, setup.placement.other_node)


async def test_a_pod_outside_the_agent_namespace_cannot_report(setup: Setup, tmp_path: Path) -> None:
    # Same CA, same trust domain, on the same node: only the namespace differs.
    placement = setup.placement
    client = _agent_client(setup, placement.outsider_namespace, placement.outsider_pod, tmp_path)
    assert not await _delivered(client, placement.agent_node)


async def test_a_pod_the_api_does_not_know_cannot_report(
    setup: Setup, server: Release, tmp_path: Path
) -> None:
    client = _agent_client(setup, server.namespace, "kubenetmon-agent-gone", tmp_path)
    assert not await _delivered(client, setup.placement.agent_node)
