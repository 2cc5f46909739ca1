"""The container image, checked as far as this machine can without a container engine: what the
Dockerfile does, that it and `make venv` (which CI runs) install through the same scripts/install.sh with
the pinned constraints, and that the slim install it makes still runs the embedded store.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from itertools import takewhile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.charts.rendering import REPO_ROOT

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
INSTALL_SH = REPO_ROOT / "scripts" / "install.sh"


def _instructions(name: str) -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(f"{name} ")]


def test_image_installs_with_the_shared_install_script_and_constraints() -> None:
    runs = " ".join(_instructions("RUN"))
    assert "scripts/install.sh /opt/kubenetmon/bin/python --slim" in runs
    assert "pip install" not in runs.replace("pip uninstall", "")
    copies = " ".join(_instructions("COPY"))
    assert "constraints.txt" in copies
    assert "scripts/install.sh" in copies


def test_make_venv_installs_with_the_shared_install_script() -> None:
    prerequisites, recipe = _make_rule("$(VENV)/.installed")
    assert "scripts/install.sh" in prerequisites
    assert "scripts/install.sh $(VENV)/bin/python --dev --editable" in recipe
    assert not [line for line in recipe if "pip install" in line]


def test_install_script_pins_versions_with_constraints() -> None:
    assert re.search(
        r'pip install .*-c "\$repo_root/constraints.txt"', INSTALL_SH.read_text().replace("\\\n", " ")
    )


def test_image_is_slim_python_3_11_built_in_two_stages() -> None:
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", DOCKERFILE, re.MULTILINE)
    assert _instructions("FROM") == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    assert _instructions("COPY")[-1] == "--from=build /opt/kubenetmon /opt/kubenetmon"


def test_image_runs_kubenetmon_as_a_non_root_user() -> None:
    assert _instructions("USER") == ["65532:65532"]
    assert _instructions("ENTRYPOINT") == ['["kubenetmon"]']


def test_build_context_admits_only_what_the_image_copies() -> None:
    patterns = [
        line for line in (REPO_ROOT / ".dockerignore").read_text().splitlines() if line[:1] not in "#"
    ]
    assert patterns[0] == "*", "exclude everything first, then admit what the image needs"
    admitted = {line[1:].rstrip("/") for line in patterns if line.startswith("!")}
    for copy in _instructions("COPY"):
        if copy.startswith("--from"):
            continue
        *sources, _ = copy.split()
        assert set(sources) <= admitted | {"."}, f"COPY {copy}: a source is excluded by .dockerignore"


def test_install_script_refuses_an_unknown_option() -> None:
    completed = subprocess.run(
        [str(INSTALL_SH), sys.executable, "--slimm"], capture_output=True, text=True, timeout=30, check=False
    )
    assert completed.returncode == 2
    assert "unknown option '--slimm' (expected --dev, --editable or --slim)" in completed.stderr


def test_install_script_refuses_a_missing_interpreter() -> None:
    completed = subprocess.run(
        [str(INSTALL_SH), "/nonexistent/bin/python"], capture_output=True, text=True, timeout=30, check=False
    )
    assert completed.returncode == 2
    assert "'/nonexistent/bin/python' is not an executable Python interpreter" in completed.stderr


def test_every_runtime_dependency_is_pinned_in_constraints() -> None:
    pinned = {
        canonicalize_name(line.split("==")[0])
        for line in (REPO_ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    unpinned = sorted(_runtime_closure(project["dependencies"]) - pinned)
    assert unpinned == [], "pin these in constraints.txt, or the image's versions float"


def test_embedded_store_works_without_the_dataframe_libraries_the_image_leaves_out(tmp_path: Path) -> None:
    # The image removes pandas, pyarrow and numpy (chdb-core declares them). Block their import and
    # create, fill and query a chDB database through clickhouse-connect, as the server does.
    script = (
        "import sys\n"
        "for name in ('pandas', 'pyarrow', 'numpy'):\n"
        "    sys.modules[name] = None\n"
        "import clickhouse_connect\n"
        f"client = clickhouse_connect.get_client(dsn='chdb://{tmp_path}/store')\n"
        "client.command('CREATE TABLE t (n UInt64, s String) ENGINE = MergeTree ORDER BY n')\n"
        "client.insert('t', [[1, 'a'], [2, 'b'], [3, 'c']], column_names=['n', 's'])\n"
        "print(client.query('SELECT sum(n), count() FROM t').result_rows)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[(6, 3)]"


def _make_rule(target: str) -> tuple[list[str], list[str]]:
    """The prerequisites and recipe lines of a Makefile rule."""
    lines = (REPO_ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = takewhile(lambda line: line.startswith("\t"), lines[start + 1 :])
    return lines[start].split(":", 1)[1].split(), [line.strip() for line in recipe]


def _runtime_closure(requirements: list[str]) -> set[str]:
    pending = [Requirement(text) for text in requirements]
    seen: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in seen or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        pending += [Requirement(text) for text in importlib.metadata.requires(requirement.name) or []]
    return seen
