"""Charts and CLI cannot drift apart: every option of `kubenetmon agent`/`server` is reachable from chart
values, and the charts set no option the command does not have.

Reachable means: some profile (defaults or an example) renders the option's environment variable into
the daemon's container. The values that lead to each option are the "Sets --flag" notes in values.yaml,
shown in the failure message as the mapping table.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from scripts import chart_docs

from tests.charts.daemon_flags import DaemonOptions, daemon_options, env_var, env_vars_in_help
from tests.charts.rendering import CHARTS_DIR, component, daemon, env_names, objects, profiles, template

pytestmark = pytest.mark.helm

# Options a chart deliberately does not offer, and why.
NOT_IN_CHART = {
    "agent": {
        # Reading another named network namespace is for the lab and tests; it needs /run/netns and
        # CAP_SYS_ADMIN, which the chart never grants.
        "KUBENETMON_NETNS",
    },
    "server": set(),
}
# Options set from the pod itself rather than from a value.
FROM_POD = {"KUBENETMON_NODE_NAME": "downward API spec.nodeName"}


def _chart_env_vars(helm: Path, chart: str) -> set[str]:
    found: set[str] = set()
    for profile in profiles(chart):
        workload, container_name = daemon(objects(template(helm, profile)))
        found |= env_names(workload, container_name)
    return found


def _mapping_table(chart: str) -> dict[str, list[str]]:
    table: dict[str, list[str]] = {name: [source] for name, source in FROM_POD.items()}
    for doc in chart_docs.value_docs(CHARTS_DIR / chart):
        for flag in doc.flags:
            table.setdefault(env_var(flag), []).append(doc.path)
    return dict(sorted(table.items()))


@pytest.fixture(scope="module", params=["kubenetmon-agent", "kubenetmon-server"])
def chart(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def options(chart: str) -> DaemonOptions:
    return daemon_options(component(chart))


def test_every_option_is_reachable_from_the_chart(helm: Path, chart: str, options: DaemonOptions) -> None:
    wanted = options.env_vars - NOT_IN_CHART[options.command]
    missing = sorted(wanted - _chart_env_vars(helm, chart))
    assert missing == [], (
        f"options of `kubenetmon {options.command}` ({options.source}) no chart value sets; "
        f"mapping table: {_mapping_table(chart)}"
    )


def test_the_chart_sets_no_option_the_command_lacks(helm: Path, chart: str, options: DaemonOptions) -> None:
    unknown = sorted(_chart_env_vars(helm, chart) - options.env_vars)
    assert unknown == [], f"`kubenetmon {options.command}` ({options.source}) has no such options"


def test_every_flag_named_in_values_yaml_exists(chart: str, options: DaemonOptions) -> None:
    named = set(_mapping_table(chart)) - set(FROM_POD)
    assert sorted(named - options.env_vars) == []


def test_every_config_key_names_the_option_it_sets(chart: str) -> None:
    # config.<key> becomes KUBENETMON_<KEY> mechanically, so its "Sets --flag" note must match the key.
    for doc in chart_docs.value_docs(CHARTS_DIR / chart):
        if doc.path.startswith("config."):
            flag = "--" + "".join(
                f"-{c.lower()}" if c.isupper() else c for c in doc.path.removeprefix("config.")
            )
            assert doc.flags == (flag,), f"{doc.path}: its comment should end with 'Sets {flag}.'"


def test_option_env_vars_are_read_from_click_help() -> None:
    @click.command()
    @click.option(
        "--spool-max-bytes", type=int, default=5, envvar="KUBENETMON_SPOOL_MAX_BYTES", show_envvar=True
    )
    @click.option("--set-sysctls/--no-set-sysctls", envvar="KUBENETMON_SET_SYSCTLS", show_envvar=True)
    def command(spool_max_bytes: int, set_sysctls: bool) -> None:
        """A command declared the way kubenetmon's are."""

    text = command.get_help(click.Context(command, max_content_width=110))
    assert env_vars_in_help(text) == {"KUBENETMON_SPOOL_MAX_BYTES", "KUBENETMON_SET_SYSCTLS"}
