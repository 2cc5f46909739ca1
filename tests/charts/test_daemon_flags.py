"""Charts and CLI cannot drift apart: every option of `kubenetmon agent`/`server` (as its live `--help`
shows it) is reachable from chart values, the charts set no variable that no option reads, and every value
a chart passes is one the command accepts and reads as the value meant.

Reachable means: some profile (defaults or an example) renders the option's environment variable into
the daemon's container. The values that lead to each option are the "Sets --flag" notes in values.yaml,
shown in the failure message as the mapping table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scripts import chart_docs

from tests.charts.daemon_flags import (
    DaemonOptions,
    config_option,
    daemon_options,
    declared_env_vars,
    env_var,
    env_vars_in_help,
    help_text,
    parse_environment,
    typed,
)
from tests.charts.rendering import (
    CHARTS,
    CHARTS_DIR,
    Profile,
    chart_defaults,
    component,
    daemon,
    env_names,
    env_values,
    merged,
    objects,
    profiles,
    template,
)

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
# Options set from the pod itself rather than from a value, and the pod fields tests stand in with.
FROM_POD = {"KUBENETMON_NODE_NAME": "downward API spec.nodeName"}
POD_FIELDS = {"spec.nodeName": "node-a"}
# Where a chart's defaults differ from the command's, and why. Every other option keeps its default.
CHART_CHOICES = {
    "agent": {
        "KUBENETMON_OUTPUT": "records go to the server (grpc), not to stdout",
        "KUBENETMON_SERVER": "the server release's Service",
        "KUBENETMON_TLS_CERT": "the certificate csi-driver mounts",
        "KUBENETMON_TLS_KEY": "its key",
        "KUBENETMON_TLS_CA": "the CA that signed the server's certificate",
        "KUBENETMON_STATE_DIR": "the state hostPath, so updates meter exactly across restarts",
        "KUBENETMON_METRICS_PORT": "the probes need the endpoint (off by default)",
        "KUBENETMON_CONFIGURE_SYSCTLS": "the init container sets them; /proc/sys is read-only in the agent",
        "KUBENETMON_LOG_FORMAT": "json for log pipelines",
    },
    "server": {
        "KUBENETMON_TLS_CERT": "the certificate cert-manager issues",
        "KUBENETMON_TLS_KEY": "its key",
        "KUBENETMON_TLS_CA": "the CA that signs agent certificates",
        "KUBENETMON_AGENT_NAMESPACE": "the release's namespace: agent pods there may prove their node",
        "KUBENETMON_CLOUD_RANGES_CACHE_DIR": "an emptyDir, so a container restart reuses the download",
        "KUBENETMON_LOG_FORMAT": "json for log pipelines",
    },
}


def _environment(helm: Path, profile: Profile) -> dict[str, str]:
    workload, container_name = daemon(objects(template(helm, profile)))
    return env_values(workload, container_name, POD_FIELDS)


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


@pytest.fixture(scope="module", params=CHARTS)
def chart(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def options(chart: str) -> DaemonOptions:
    return daemon_options(component(chart))


def test_every_option_is_reachable_from_the_chart(helm: Path, chart: str, options: DaemonOptions) -> None:
    wanted = options.env_vars - NOT_IN_CHART[options.command]
    missing = sorted(wanted - _chart_env_vars(helm, chart))
    assert missing == [], (
        f"no chart value sets these options of `kubenetmon {options.command}`; "
        f"mapping table: {_mapping_table(chart)}"
    )


def test_the_chart_sets_no_variable_the_command_does_not_read(
    helm: Path, chart: str, options: DaemonOptions
) -> None:
    unknown = sorted(_chart_env_vars(helm, chart) - options.env_vars)
    assert unknown == [], f"`kubenetmon {options.command} --help` shows no option that reads these"


def test_options_left_out_of_the_chart_exist(options: DaemonOptions) -> None:
    assert NOT_IN_CHART[options.command] <= options.env_vars


def test_every_flag_named_in_values_yaml_exists(chart: str, options: DaemonOptions) -> None:
    named = set(_mapping_table(chart)) - set(FROM_POD)
    assert sorted(named - options.env_vars) == []


def test_every_config_key_names_the_option_it_sets(chart: str) -> None:
    # config.<key> becomes KUBENETMON_<KEY> mechanically, so its "Sets --flag" note must match the key.
    for doc in chart_docs.value_docs(CHARTS_DIR / chart):
        if doc.path.startswith("config."):
            flag = config_option(doc.path.removeprefix("config."))
            assert doc.flags == (flag,), f"{doc.path}: its comment should end with 'Sets {flag}.'"


@pytest.mark.parametrize("command", ["agent", "server"])
def test_help_shows_every_variable_the_command_reads(command: str) -> None:
    # Guards the --help reading above: a variable it missed (say, wrapped onto the next line) would make
    # the drift checks pass without looking.
    assert env_vars_in_help(help_text(command)) == declared_env_vars(command)


@pytest.mark.parametrize("profile", profiles(), ids=str)
def test_the_command_reads_every_config_value_as_given(helm: Path, profile: Profile) -> None:
    command = component(profile.chart)
    parsed = parse_environment(command, _environment(helm, profile))
    config = merged(chart_defaults(profile.chart), profile.overrides())["config"]
    expected: dict[str, Any] = {}
    for key, value in config.items():
        if value not in ("", []):
            variable = env_var(config_option(key))
            expected[variable] = typed(command, variable, value)
    assert {variable: parsed[variable] for variable in expected} == expected


@pytest.mark.parametrize("chart", CHARTS)
def test_chart_defaults_are_the_command_defaults_unless_chosen(helm: Path, chart: str) -> None:
    command = component(chart)
    from_chart = parse_environment(command, _environment(helm, Profile(chart, None)))
    defaults = parse_environment(command, {})
    differing = {variable for variable, value in from_chart.items() if value != defaults[variable]}
    assert differing - set(FROM_POD) == set(CHART_CHOICES[command])
