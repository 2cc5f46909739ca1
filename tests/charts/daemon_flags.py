"""The options of `kubenetmon agent` and `kubenetmon server`: the environment variables their live `--help`
shows, and what the command makes of a container's environment.

The charts pass every option as its environment variable KUBENETMON_<OPTION>, so these are the names and
the parsing the charts must agree with.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from unittest import mock

import click

from kubenetmon.cli import main
from tests.charts.rendering import REPO_ROOT

# click wraps help lines, sometimes right after "env var:".
_ENV_VAR = re.compile(r"\[env\s+var:\s+(KUBENETMON_[A-Z0-9_]+)")
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    """The environment variables of one subcommand's options, as its live --help shows them."""

    command: str
    env_vars: frozenset[str]


def env_var(option: str) -> str:
    """KUBENETMON_<OPTION> of a long option, e.g. --spool-max-bytes -> KUBENETMON_SPOOL_MAX_BYTES."""
    return "KUBENETMON_" + option.removeprefix("--").replace("-", "_").upper()


def config_option(key: str) -> str:
    """The option a `config.<key>` value sets, e.g. destroyGrace -> --destroy-grace."""
    return "--" + _CAMEL_HUMP.sub("-", key).lower()


def help_text(command: str) -> str:
    """`python -m kubenetmon <command> --help`; fails if the subcommand does not start."""
    completed = subprocess.run(
        [sys.executable, "-m", "kubenetmon", command, "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")},
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"kubenetmon {command} --help exited {completed.returncode}:\n{completed.stderr}")
    return completed.stdout


def env_vars_in_help(text: str) -> frozenset[str]:
    """The KUBENETMON_* variables a click --help text shows (options declare show_envvar=True)."""
    return frozenset(_ENV_VAR.findall(text))


def daemon_options(command: str) -> DaemonOptions:
    """The subcommand's option environment variables, from its live --help."""
    return DaemonOptions(command, env_vars_in_help(help_text(command)))


def click_command(command: str) -> click.Command:
    """The click command object of a subcommand."""
    with click.Context(main) as context:
        found = main.get_command(context, command)
    assert found is not None, f"kubenetmon has no subcommand {command!r}"
    return found


def declared_env_vars(command: str) -> frozenset[str]:
    """The environment variables the command's options declare (what --help should show)."""
    return frozenset(param.envvar for param in click_command(command).params if isinstance(param.envvar, str))


def parse_environment(command: str, environment: Mapping[str, str]) -> dict[str, Any]:
    """env var -> value of every option, as the command parses them with exactly these KUBENETMON_*
    variables set; a value the command rejects raises click.BadParameter."""
    cmd = click_command(command)
    outside = {name: value for name, value in os.environ.items() if not name.startswith("KUBENETMON_")}
    with mock.patch.dict(os.environ, {**outside, **environment}, clear=True):
        context = cmd.make_context(command, [])
    return {str(param.envvar): context.params[str(param.name)] for param in _env_params(cmd)}


def typed(command: str, variable: str, value: Any) -> Any:
    """A chart value (scalar, or list for a repeatable option) as the option's type makes it."""
    cmd = click_command(command)
    param = next(param for param in _env_params(cmd) if param.envvar == variable)
    with click.Context(cmd) as context:
        return param.type_cast_value(context, value)


def _env_params(cmd: click.Command) -> list[click.Parameter]:
    return [param for param in cmd.params if isinstance(param.envvar, str)]
