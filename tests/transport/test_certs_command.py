"""`kubenetmon certs` writes a working CA, server and node certificates and says what it wrote."""

import stat
from pathlib import Path

from click.testing import CliRunner
from cryptography import x509

from kubenetmon.cli import main
from kubenetmon.transport.tls import certificate_names


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["certs", *args])
    return result.exit_code, result.output


def test_it_writes_a_ca_a_server_and_each_node_and_lists_them(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    code, output = run(
        "--out", str(out), "--server-name", "kubenetmon-server", "--server-name", "127.0.0.1",
        "--node", "node-a", "--node", "node-b",
    )  # fmt: skip
    assert code == 0, output
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(
        ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem"]
        + [f"node-{n}{suffix}" for n in ("node-a", "node-b") for suffix in (".pem", "-key.pem")]
    )
    listed = [
        "ca.pem",
        "ca-key.pem",
        "server.pem",
        "server-key.pem",
        "node-node-a.pem",
        "node-node-a-key.pem",
    ]
    listed += ["node-node-b.pem", "node-node-b-key.pem"]
    assert [line.split()[1] for line in output.splitlines()] == [str(out / name) for name in listed]
    for key in out.glob("*-key.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_the_server_certificate_carries_every_name_given(tmp_path: Path) -> None:
    run("--out", str(tmp_path), "--server-name", "kubenetmon-server", "--server-name", "127.0.0.1")
    cert = x509.load_pem_x509_certificate((tmp_path / "server.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["kubenetmon-server"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_a_node_certificate_vouches_for_that_node(tmp_path: Path) -> None:
    run("--out", str(tmp_path), "--node", "ip-10-0-1-5.ec2.internal")
    assert certificate_names((tmp_path / "node-ip-10-0-1-5.ec2.internal.pem").read_bytes()) == {
        "ip-10-0-1-5.ec2.internal"
    }


def test_a_second_run_reuses_the_ca_to_add_nodes(tmp_path: Path) -> None:
    run("--out", str(tmp_path), "--node", "node-a")
    ca = (tmp_path / "ca.pem").read_bytes()
    code, output = run("--out", str(tmp_path), "--node", "node-b")
    assert code == 0
    assert output.splitlines()[0].startswith("reused ")
    assert (tmp_path / "ca.pem").read_bytes() == ca


def test_existing_certificates_are_replaced_only_with_force(tmp_path: Path) -> None:
    run("--out", str(tmp_path), "--node", "node-a")
    code, output = run("--out", str(tmp_path), "--node", "node-a")
    assert code == 2
    assert "already exist; pass --force" in output
    assert run("--out", str(tmp_path), "--node", "node-a", "--force")[0] == 0


def test_a_node_name_that_is_not_a_dns_name_is_refused(tmp_path: Path) -> None:
    code, output = run("--out", str(tmp_path), "--node", "../../etc/passwd")
    assert code == 2
    assert "is not a Kubernetes node name" in output
    assert not any(tmp_path.iterdir())


def test_nothing_to_make_is_a_usage_error(tmp_path: Path) -> None:
    code, output = run("--out", str(tmp_path))
    assert code == 2
    assert "give --server-name and/or --node" in output
