"""AgentSettings validation: every problem reported at once, each naming its flag."""

from __future__ import annotations

import pytest

from kubenetmon.agent.settings import AgentSettings
from kubenetmon.errors import SettingsError


def test_defaults_are_valid_and_the_node_defaults_to_the_hostname() -> None:
    settings = AgentSettings()
    assert settings.interval == 5.0
    assert settings.node


def test_every_problem_is_reported_in_one_error() -> None:
    with pytest.raises(SettingsError) as caught:
        AgentSettings(
            interval=0,
            destroy_grace=-1,
            metrics_port=70000,
            ignore_protocols=("tcp", "nonsense"),
            ignore_cidrs=("198.18.0.0/15", "not-a-net"),
            ignore_zones=(70000,),
            event_buffer_bytes=10,
            netns="no-such-namespace-kt",
        )
    message = str(caught.value)
    for flag in (
        "--interval",
        "--destroy-grace",
        "--metrics-port",
        "--ignore-protocol",
        "--ignore-cidr",
        "--ignore-zone",
        "--event-buffer-bytes",
        "--netns",
    ):
        assert flag in message
    assert "nonsense" in message and "not-a-net" in message


def test_protocols_are_accepted_by_name_or_number() -> None:
    assert AgentSettings(ignore_protocols=("icmp", "47")).ignored_protocol_numbers == {1, 47}


def test_a_netns_name_that_is_a_path_is_rejected() -> None:
    with pytest.raises(SettingsError, match="--netns"):
        AgentSettings(netns="../etc")
