"""The options of `kubenetmon agent` and `kubenetmon server`, as the environment variables charts set.

The live `--help` output is the truth. While a subcommand does not exist yet on this branch, the lead's
draft flag list (FLAGS-DRAFT.md, copied below) stands in for it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass

from tests.charts.rendering import REPO_ROOT

DRAFT_OPTIONS: dict[str, tuple[str, ...]] = {
    "agent": (
        "--node-name", "--interval", "--output", "--server", "--tls-cert", "--tls-key", "--tls-ca",
        "--insecure", "--spool-dir", "--spool-max-bytes", "--state-dir", "--netns", "--set-sysctls",
        "--ignore-cidr", "--protocols", "--metrics-port", "--log-level", "--log-format",
    ),
    "server": (
        "--listen", "--metrics-port", "--tls-cert", "--tls-key", "--tls-ca", "--insecure", "--store",
        "--store-password-file", "--table", "--kubeconfig", "--no-kubernetes", "--inventory",
        "--environment", "--cluster", "--cloud", "--region", "--private-cidr", "--cloud-ranges-refresh",
        "--cloud-ranges-url", "--cloud-ranges-cache-dir", "--bucket-seconds", "--pod-grace-seconds",
        "--wal-dir", "--wal-max-bytes", "--flush-rows", "--flush-seconds", "--max-batch-records",
        "--log-level", "--log-format",
    ),
}  # fmt: skip

_ENV_VAR = re.compile(r"env var: (KUBENETMON_[A-Z0-9_]+)")


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    """The environment variables of one subcommand's options, and where the list came from."""

    command: str
    env_vars: frozenset[str]
    source: str
    """'live --help' or 'FLAGS-DRAFT.md'."""


def env_var(option: str) -> str:
    """KUBENETMON_<OPTION> of a long option, e.g. --spool-max-bytes -> KUBENETMON_SPOOL_MAX_BYTES."""
    return "KUBENETMON_" + option.removeprefix("--").replace("-", "_").upper()


def help_text(command: str) -> str | None:
    """`python -m kubenetmon <command> --help`, or None while the subcommand's module does not exist."""
    completed = subprocess.run(
        [sys.executable, "-m", "kubenetmon", command, "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), "COLUMNS": "200"},
        timeout=120,
        check=False,
    )
    if completed.returncode == 0:
        return completed.stdout
    if f"No module named 'kubenetmon.cli.{command}'" in completed.stderr:
        return None
    raise RuntimeError(f"kubenetmon {command} --help failed:\n{completed.stderr}")


def daemon_options(command: str) -> DaemonOptions:
    """The subcommand's option environment variables, from its live --help when it exists."""
    text = help_text(command)
    if text is None:
        env_vars = frozenset(env_var(option) for option in DRAFT_OPTIONS[command])
        return DaemonOptions(command, env_vars, "FLAGS-DRAFT.md")
    return DaemonOptions(command, env_vars_in_help(text), "live --help")


def env_vars_in_help(text: str) -> frozenset[str]:
    """The KUBENETMON_* variables a click --help text shows (options declare show_envvar=True)."""
    return frozenset(_ENV_VAR.findall(text))
