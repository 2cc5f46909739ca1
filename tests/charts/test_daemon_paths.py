"""Every file or directory a chart names to its daemon is on a volume of the container, because the root
filesystem is read-only: directories the daemon writes on writable volumes, files it reads among what
the volume projects.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import click
import pytest

from tests.charts.daemon_flags import click_command
from tests.charts.rendering import (
    Profile,
    component,
    container,
    daemon,
    env_values,
    objects,
    profiles,
    template,
)

pytestmark = pytest.mark.helm

# Directories the daemons write (the embedded store is the --store DSN's path).
WRITTEN = {
    "KUBENETMON_STORE",
    "KUBENETMON_WAL_DIR",
    "KUBENETMON_CLOUD_RANGES_CACHE_DIR",
    "KUBENETMON_SPOOL_DIR",
    "KUBENETMON_STATE_DIR",
}
# csi-driver's default file names (the chart sets no csi.cert-manager.io/*-file attribute).
CSI_FILES = {"tls.crt", "tls.key", "ca.crt"}


def _paths(command: str, environment: dict[str, str]) -> dict[str, PurePosixPath]:
    """The paths the environment names: path options, and the store DSN's directory and CA file."""
    path_vars = {
        str(param.envvar)
        for param in click_command(command).params
        if isinstance(param.type, click.Path) and isinstance(param.envvar, str)
    }
    found = {name: PurePosixPath(value) for name, value in environment.items() if name in path_vars}
    if "KUBENETMON_STORE" in environment:
        dsn = urlsplit(environment["KUBENETMON_STORE"])
        if dsn.scheme == "chdb":
            found["KUBENETMON_STORE"] = PurePosixPath(dsn.path)
        if ca_cert := dict(parse_qsl(dsn.query)).get("ca_cert"):
            found["KUBENETMON_STORE ca_cert"] = PurePosixPath(ca_cert)
    return found


def _volume_problem(path: PurePosixPath, written: bool, mount: dict[str, Any], volume: dict[str, Any]) -> str:
    if written:
        if mount.get("readOnly") or not ({"emptyDir", "persistentVolumeClaim", "hostPath"} & set(volume)):
            return f"is written, but volume {volume['name']} is not writable"
        return ""
    relative = path.relative_to(mount["mountPath"])
    source = volume.get("secret") or volume.get("configMap")
    if source is not None and "items" in source:
        projected = {item["path"] for item in source["items"]}
        return "" if str(relative) in projected else f"is not among the files {sorted(projected)}"
    if "csi" in volume:
        return "" if str(relative) in CSI_FILES else f"is not a file csi-driver writes ({sorted(CSI_FILES)})"
    return ""


@pytest.mark.parametrize("profile", profiles(), ids=str)
def test_every_path_given_to_the_daemon_is_on_a_fitting_volume(helm: Path, profile: Profile) -> None:
    workload, container_name = daemon(objects(template(helm, profile)))
    environment = env_values(workload, container_name, {"spec.nodeName": "node-a"})
    mounts = container(workload, container_name)["volumeMounts"]
    volumes = {volume["name"]: volume for volume in workload["spec"]["template"]["spec"]["volumes"]}
    problems = []
    for name, path in _paths(component(profile.chart), environment).items():
        holding = [m for m in mounts if path.is_relative_to(m["mountPath"])]
        if not holding:
            problems.append(f"{name}={path}: on the read-only root filesystem")
            continue
        mount = max(holding, key=lambda m: len(m["mountPath"]))
        problem = _volume_problem(path, name in WRITTEN, mount, volumes[mount["name"]])
        if problem:
            problems.append(f"{name}={path}: {problem}")
    assert problems == []
