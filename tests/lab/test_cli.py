"""`kubenetmon lab up|status|down` leave a lab running, list it, and remove exactly it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubenetmon.cli import main
from kubenetmon.lab import Lab, Topology
from kubenetmon.lab.netns import add_namespaces, delete_namespaces, existing_namespaces

pytestmark = pytest.mark.kernel


def _invoke(*args: str) -> str:
    outcome = CliRunner().invoke(main, ["lab", *args])
    assert outcome.exit_code == 0, outcome.output
    return outcome.output


def test_up_status_down_round_trip(tmp_path: Path) -> None:
    state = str(tmp_path)
    bystander = f"knm-test-{os.getpid()}-cli-bystander"
    add_namespaces([bystander])
    created: set[str] = set()
    try:
        up = json.loads(_invoke("up", "--topology", "two-nodes", "--json", "--state-dir", state))
        created = {host["netns"] for host in up["hosts"]}
        assert up["namespaces_present"] == up["namespaces_total"] == len(created) == 9
        assert created <= existing_namespaces()

        (listed,) = json.loads(_invoke("status", "--json", "--state-dir", state))
        assert listed["id"] == up["id"]
        assert listed["services"][0]["vip_v4"] == "198.19.0.10"
        assert up["id"] in _invoke("status", "--state-dir", state)

        down = json.loads(_invoke("down", "--json", "--state-dir", state))
        assert sorted(down["removed"][up["id"]]) == sorted(created)
        assert created & existing_namespaces() == set()
        assert bystander in existing_namespaces()
        assert "no labs recorded" in _invoke("status", "--state-dir", state)
    finally:
        delete_namespaces([bystander, *created])


def test_down_leaves_a_lab_that_a_running_process_is_using(tmp_path: Path) -> None:
    with Lab(Topology.two_nodes(), state_dir=tmp_path) as lab:
        output = json.loads(_invoke("down", "--json", "--state-dir", str(tmp_path)))
        assert output == {"removed": {}, "skipped_in_use": [lab.id]}
        assert set(lab.namespaces) <= existing_namespaces()


def test_up_can_leave_conntrack_accounting_at_the_netns_defaults(tmp_path: Path) -> None:
    up = json.loads(
        _invoke(
            "up",
            "--topology",
            "two-nodes",
            "--no-conntrack-accounting",
            "--json",
            "--state-dir",
            str(tmp_path),
        )
    )
    lab = Lab.attach(up["id"], tmp_path)
    try:
        assert lab.sysctl("node-1", "net.netfilter.nf_conntrack_acct") == "0"
    finally:
        lab.down()
    assert set(lab.namespaces) & existing_namespaces() == set()
