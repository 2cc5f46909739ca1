"""A lab is built and torn down completely: on success, on errors, on signals and at exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kubenetmon.lab import Lab, LabError, Topology, state
from kubenetmon.lab import lab as lab_module
from kubenetmon.lab.netns import add_namespaces, delete_namespaces, existing_namespaces, interfaces_not_ready

pytestmark = pytest.mark.kernel


def _left(lab: Lab) -> set[str]:
    return set(lab.namespaces) & existing_namespaces()


def test_a_lab_creates_all_its_namespaces_and_removes_them_on_exit(tmp_path: Path) -> None:
    lab = Lab(Topology.two_nodes(), state_dir=tmp_path)
    with lab:
        assert _left(lab) == set(lab.namespaces)
        assert all(name.startswith(lab.prefix) for name in lab.namespaces)
    assert _left(lab) == set()


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()], ids=["exception", "ctrl-c"])
def test_no_namespace_is_left_when_the_body_raises(tmp_path: Path, error: BaseException) -> None:
    lab = Lab(Topology.two_nodes(), state_dir=tmp_path)
    with pytest.raises(type(error)), lab:
        raise error
    assert _left(lab) == set()
    assert list(tmp_path.iterdir()) == []


def test_a_build_that_fails_half_way_removes_what_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise LabError("nft refused the ruleset")

    monkeypatch.setattr(lab_module.netns, "netns_run", refuse)
    lab = Lab(Topology.two_nodes(), state_dir=tmp_path)
    with pytest.raises(LabError, match="nft refused"):
        lab.up()
    assert _left(lab) == set()
    assert list(tmp_path.iterdir()) == []


def test_the_record_names_every_namespace_while_the_lab_is_up(tmp_path: Path) -> None:
    with Lab(Topology.two_nodes(), state_dir=tmp_path) as lab:
        record = state.read_record(tmp_path, lab.id)
        assert set(record.namespaces) == set(lab.namespaces)
        assert record.owner_pid == os.getpid()
        assert not record.kept
    assert state.read_records(tmp_path) == []


def test_a_lab_refuses_to_reuse_a_namespace_that_already_exists(tmp_path: Path) -> None:
    first = Lab(Topology.two_nodes(), state_dir=tmp_path)
    with first:
        twin = Lab(Topology.two_nodes(), state_dir=tmp_path / "other", lab_id=first.id)
        with pytest.raises(LabError, match="already exist"):
            twin.up()
        assert _left(first) == set(first.namespaces), (
            "the failed twin must not delete the first lab's namespaces"
        )


def test_two_labs_of_the_same_topology_run_side_by_side(tmp_path: Path) -> None:
    with (
        Lab(Topology.two_nodes(), state_dir=tmp_path) as one,
        Lab(Topology.two_nodes(), state_dir=tmp_path) as two,
    ):
        assert one.prefix != two.prefix
        assert _left(one) == set(one.namespaces)
        assert _left(two) == set(two.namespaces)


def test_processes_started_in_the_lab_are_killed_at_teardown(tmp_path: Path) -> None:
    with Lab(Topology.two_nodes(), state_dir=tmp_path) as lab:
        spawned = lab.spawn("default/p1a", ["sleep", "300"])
        stray = subprocess.Popen(["ip", "netns", "exec", lab.netns("node-2"), "sleep", "300"])
    assert spawned.poll() is not None
    assert stray.wait(timeout=5) is not None


def _run_child(tmp_path: Path, body: str) -> subprocess.Popen[str]:
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from kubenetmon.lab import Lab, Topology
        lab = Lab(Topology.two_nodes(), state_dir=Path({str(tmp_path)!r}))
        lab.up()
        print(" ".join(lab.namespaces), flush=True)
        """
    ) + textwrap.dedent(body)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)


def test_sigterm_tears_the_lab_down(tmp_path: Path) -> None:
    with _run_child(tmp_path, "time.sleep(60)\n") as child:
        assert child.stdout is not None
        names = set(child.stdout.readline().split())
        assert names and names <= existing_namespaces()
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=30) == 128 + signal.SIGTERM
    assert names & existing_namespaces() == set()
    assert state.read_records(tmp_path) == []


def test_a_lab_still_up_at_interpreter_exit_is_torn_down(tmp_path: Path) -> None:
    with _run_child(tmp_path, "sys.exit(0)\n") as child:
        assert child.stdout is not None
        names = set(child.stdout.readline().split())
        assert child.wait(timeout=30) == 0
    assert names
    assert names & existing_namespaces() == set()


def test_a_kept_lab_survives_its_process_and_is_removed_by_its_record(tmp_path: Path) -> None:
    with _run_child(tmp_path, "lab.keep()\n") as child:
        assert child.stdout is not None
        names = set(child.stdout.readline().split())
        assert child.wait(timeout=30) == 0
    try:
        assert names <= existing_namespaces()
        (record,) = state.read_records(tmp_path)
        assert record.kept and not record.owner_alive
        assert set(lab_module.tear_down_recorded(record, tmp_path)) == names
    finally:
        delete_namespaces(names)
    assert names & existing_namespaces() == set()
    assert state.read_records(tmp_path) == []


def test_a_record_naming_namespaces_outside_its_prefix_is_refused(tmp_path: Path) -> None:
    bystander = f"knm-test-{os.getpid()}-bystander"
    add_namespaces([bystander])
    try:
        record = state.LabRecord(
            id="forged",
            prefix="knm-forged-",
            namespaces=("knm-forged-router", bystander),
            owner_pid=1,
            created=0.0,
            kept=True,
            conntrack_accounting=True,
            topology=Topology.two_nodes().to_dict(),
        )
        with pytest.raises(LabError, match="outside its prefix"):
            lab_module.tear_down_recorded(record, tmp_path)
        assert bystander in existing_namespaces()
    finally:
        delete_namespaces([bystander])


def test_nodes_get_accounting_and_events_by_default(two_nodes_lab: Lab) -> None:
    for node in ("node-1", "node-2"):
        assert two_nodes_lab.sysctl(node, "net.netfilter.nf_conntrack_acct") == "1"
        assert two_nodes_lab.sysctl(node, "net.netfilter.nf_conntrack_events") == "1"


def test_ipv6_is_up_on_every_interface_when_up_returns(two_nodes_lab: Lab) -> None:
    for name in two_nodes_lab.namespaces:
        assert interfaces_not_ready(name) == [], name


def test_nodes_can_be_left_at_a_new_namespaces_conntrack_defaults(tmp_path: Path) -> None:
    with Lab(Topology.two_nodes(), state_dir=tmp_path, conntrack_accounting=False) as lab:
        for node in ("node-1", "node-2"):
            assert lab.sysctl(node, "net.netfilter.nf_conntrack_acct") == "0"
            assert lab.sysctl(node, "net.netfilter.nf_conntrack_events") == "2"


def test_conntrack_timeouts_are_set_per_node(two_nodes_lab: Lab) -> None:
    lab = two_nodes_lab
    default = lab.sysctl("node-2", "net.netfilter.nf_conntrack_tcp_timeout_time_wait")
    lab.set_conntrack_timeouts(["node-1"], tcp_timeout_time_wait=5, udp_timeout=7)
    assert lab.sysctl("node-1", "net.netfilter.nf_conntrack_tcp_timeout_time_wait") == "5"
    assert lab.sysctl("node-1", "net.netfilter.nf_conntrack_udp_timeout") == "7"
    assert lab.sysctl("node-2", "net.netfilter.nf_conntrack_tcp_timeout_time_wait") == default


def test_an_unknown_conntrack_timeout_is_an_error_naming_it(two_nodes_lab: Lab) -> None:
    with pytest.raises(LabError, match="tcp_timeout_nap"):
        two_nodes_lab.set_conntrack_timeouts(tcp_timeout_nap=5)
