"""Readiness checks and `kubenetmon doctor` against real namespaces."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kubenetmon.agent.doctor import Status, run_checks
from kubenetmon.cli.doctor import command
from kubenetmon.conntrack import sysctl
from tests.conntrack.kernel import NODE_V4, PEER_V4, node_and_peer, sh

pytestmark = pytest.mark.kernel
ONE_UDP_ENTRY = f"-p udp -s {NODE_V4} -d {PEER_V4} --sport 1 --dport 2 -t 60"


def statuses(namespace: str, fix: bool) -> dict[str, Status]:
    return {result.name: result.status for result in run_checks(namespace, fix)}


def test_a_ready_namespace_passes_every_check() -> None:
    with node_and_peer() as pair:
        pair.insert(ONE_UDP_ENTRY)
        assert set(statuses(pair.node, fix=False).values()) == {Status.OK}


def test_wrong_knobs_fail_without_fix_and_are_set_with_it() -> None:
    with node_and_peer() as pair:
        pair.sysctl("nf_conntrack_acct", 0)
        pair.sysctl("nf_conntrack_events", 2)
        pair.sysctl("nf_conntrack_timestamp", 0)
        knobs = ("nf_conntrack_acct", "nf_conntrack_events", "nf_conntrack_timestamp")
        found = statuses(pair.node, fix=False)
        assert [found[knob] for knob in knobs] == [Status.FAIL] * 3
        fixed = statuses(pair.node, fix=True)
        assert [fixed[knob] for knob in knobs] == [Status.FIXED] * 3
        assert [sysctl.read(knob, pair.node) for knob in knobs] == [1, 1, 1]


def test_an_empty_table_warns_that_conntrack_may_not_be_active() -> None:
    with node_and_peer() as pair:
        sh("nft", "flush ruleset", namespace=pair.node)
        assert statuses(pair.node, fix=False)["conntrack active"] is Status.WARN


def test_entries_created_without_accounting_fail_the_counters_check() -> None:
    with node_and_peer() as pair:
        pair.sysctl("nf_conntrack_acct", 0)
        pair.insert(ONE_UDP_ENTRY)
        assert statuses(pair.node, fix=True)["counters"] is Status.FAIL


def test_doctor_json_lists_every_check_and_exits_nonzero_on_failure() -> None:
    with node_and_peer() as pair:
        pair.sysctl("nf_conntrack_events", 2)
        result = CliRunner().invoke(command, ["--netns", pair.node, "--json"])
        rows = json.loads(result.output)
        assert [row["check"] for row in rows] == [
            "nf_conntrack_acct",
            "nf_conntrack_events",
            "nf_conntrack_timestamp",
            "conntrack active",
            "counters",
        ]
        assert result.exit_code == 1
        assert any("sysctl -w net.netfilter.nf_conntrack_events=1" in row["remedy"] for row in rows)


def test_doctor_prints_a_table_with_every_check() -> None:
    with node_and_peer() as pair:
        result = CliRunner().invoke(command, ["--netns", pair.node])
        for name in (
            "nf_conntrack_acct",
            "nf_conntrack_events",
            "nf_conntrack_timestamp",
            "conntrack active",
            "counters",
        ):
            assert name in result.output
