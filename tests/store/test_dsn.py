"""Store DSNs: what each form means, what is refused, and that the password never shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubenetmon.errors import SettingsError
from kubenetmon.store.dsn import DEFAULT_DSN, PASSWORD_ENV, parse_dsn, store_settings
from kubenetmon.store.schema import TableName


def test_the_default_is_the_embedded_engine_in_var_lib() -> None:
    settings = parse_dsn(DEFAULT_DSN)
    assert settings.embedded and settings.path == "/var/lib/kubenetmon"
    assert settings.name == TableName("default", "network_flows_0")


def test_embedded_database_and_table_come_from_parameters() -> None:
    settings = parse_dsn("chdb:///data/flows/?database=net&table=flows_v2")
    assert (settings.path, settings.name) == ("/data/flows", TableName("net", "flows_v2"))


def test_https_is_verified_tls_on_8443_by_default() -> None:
    settings = parse_dsn("https://ingest@ch.example.com/metering?table=flows&cluster=prod")
    assert (settings.scheme, settings.host, settings.port, settings.username) == (
        "https", "ch.example.com", 8443, "ingest",
    )  # fmt: skip
    assert settings.verify_tls
    assert settings.name == TableName("metering", "flows", "prod")


def test_plain_http_only_when_asked_for() -> None:
    settings = parse_dsn("http://127.0.0.1:18123/db?timeout=30")
    assert (settings.scheme, settings.port, settings.timeout) == ("http", 18123, 30.0)


@pytest.mark.parametrize(
    ("dsn", "complaint"),
    [
        ("mysql://host/db", "scheme must be chdb://"),
        ("chdb://relative/path", "absolute directory"),
        ("chdb:///x?cluster=prod", "only apply to a remote store"),
        ("https://host/db?tabel=x", "unknown parameter(s) tabel"),
        ("https://host/db/extra", "give the database once"),
        ("https://host:99999/db", "bad port"),
        ("https:///db", "no host"),
        ("http://host/db?verify=false", "apply to https only"),
        ("https://host/db?timeout=0", "timeout must be a positive number"),
    ],
)
def test_bad_dsns_are_refused_naming_the_problem(dsn: str, complaint: str) -> None:
    with pytest.raises(SettingsError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        parse_dsn(dsn)


def test_the_password_never_appears_in_repr_str_or_messages() -> None:
    settings = parse_dsn("https://ingest:s3cr%40t@ch.example.com/db")
    assert settings.password == "s3cr@t"
    for text in (repr(settings), str(settings), settings.display()):
        assert "s3cr" not in text and ":***@" in text
    with pytest.raises(SettingsError) as refused:
        parse_dsn("https://ingest:s3cret@ch.example.com/db?nope=1")
    assert "s3cret" not in str(refused.value)


def test_the_password_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-file\n")
    assert store_settings("https://u@h/db", str(secret), environ={}).password == "from-file"
    assert store_settings("https://u@h/db", None, environ={PASSWORD_ENV: "from-env"}).password == "from-env"


def test_a_password_given_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=f"the DSN and {PASSWORD_ENV}"):
        store_settings("https://u:p@h/db", None, environ={PASSWORD_ENV: "q"})


def test_an_embedded_store_takes_no_password() -> None:
    with pytest.raises(SettingsError, match="embedded store has no users"):
        store_settings("chdb:///x", None, environ={PASSWORD_ENV: "q"})


def test_an_unreadable_password_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"--store-password-file .*/missing: cannot read it"):
        store_settings("https://u@h/db", str(tmp_path / "missing"), environ={})
