"""One DSN names the store everywhere (`--store` / `KUBENETMON_STORE` on server, query and report).

    chdb:///var/lib/kubenetmon?database=default&table=network_flows_0      embedded engine (the default)
    https://user@clickhouse.example:8443/default?table=network_flows_0     remote, TLS verified
    http://user@127.0.0.1:8123/default                                     remote without TLS, when asked for

Query parameters: `table`, `database` (the path names it for http/https), `cluster` (remote: write through
a Distributed table, DDL `ON CLUSTER`), `verify=false` and `ca_cert=/path` (https), `connect_timeout` and
`timeout` (seconds). The password comes from exactly one of: the DSN, `KUBENETMON_STORE_PASSWORD`, or
`--store-password-file`. It is never part of `repr()`, `str()` or `display()`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from kubenetmon.errors import SettingsError
from kubenetmon.store.schema import TableName

DEFAULT_DSN = "chdb:///var/lib/kubenetmon"
PASSWORD_ENV = "KUBENETMON_STORE_PASSWORD"
DEFAULT_PORTS = {"https": 8443, "http": 8123}
_KNOWN_PARAMS = ("table", "database", "cluster", "verify", "ca_cert", "connect_timeout", "timeout")
_REMOTE_ONLY = ("cluster", "verify", "ca_cert", "connect_timeout", "timeout")

Scheme = Literal["chdb", "http", "https"]


@dataclass(frozen=True, slots=True, repr=False)
class StoreSettings:
    """Where and how to reach ClickHouse; built only by `parse_dsn` / `store_settings`."""

    scheme: Scheme
    name: TableName = field(default_factory=TableName)
    path: str = ""
    """Embedded engine directory (chdb only). One process at a time may hold it."""
    host: str = ""
    port: int = 0
    username: str = ""
    password: str = field(default="", repr=False)
    verify_tls: bool = True
    ca_cert: str = ""
    connect_timeout: float = 10.0
    timeout: float = 300.0
    """Send/receive timeout for one request (a large insert or a long report query)."""

    @property
    def embedded(self) -> bool:
        return self.scheme == "chdb"

    def display(self) -> str:
        """The DSN with the password masked, for logs and messages."""
        params = {"table": self.name.table}
        if self.embedded:
            params["database"] = self.name.database
            base = f"chdb://{self.path}"
        else:
            user = (
                quote(self.username, safe="") + (":***" if self.password else "") + "@"
                if self.username
                else ""
            )
            base = f"{self.scheme}://{user}{self.host}:{self.port}/{self.name.database}"
            if self.name.cluster:
                params["cluster"] = self.name.cluster
        return base + "?" + "&".join(f"{key}={quote(value, safe='/')}" for key, value in params.items())

    def __repr__(self) -> str:
        return f"StoreSettings({self.display()})"

    __str__ = display


def parse_dsn(dsn: str) -> StoreSettings:
    """Parse a store DSN; raises SettingsError naming what is wrong. An inline password is kept."""
    parts = urlsplit(dsn)
    scheme = parts.scheme.lower()
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(params) - set(_KNOWN_PARAMS))
    if unknown:
        raise SettingsError(
            f"store DSN {_masked(dsn)!r}: unknown parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(_KNOWN_PARAMS)}"
        )
    if scheme == "chdb":
        return _embedded(dsn, parts.netloc, parts.path, params)
    if scheme in DEFAULT_PORTS:
        return _remote(dsn, scheme, params)
    raise SettingsError(
        f"store DSN {_masked(dsn)!r}: scheme must be chdb:// (embedded), https:// or http://, "
        f"got {parts.scheme!r}"
    )


def _embedded(dsn: str, netloc: str, path: str, params: dict[str, str]) -> StoreSettings:
    if netloc or not path.startswith("/"):
        raise SettingsError(
            f"store DSN {dsn!r}: an embedded store needs an absolute directory, e.g. chdb:///var/lib/kubenetmon"
        )
    remote_only = [key for key in _REMOTE_ONLY if key in params]
    if remote_only:
        raise SettingsError(f"store DSN {dsn!r}: {', '.join(remote_only)} only apply to a remote store")
    name = TableName(_identifier(dsn, params, "database", "default"), _identifier(dsn, params, "table"))
    return StoreSettings("chdb", name, path=os.path.normpath(unquote(path)))


def _remote(dsn: str, scheme: str, params: dict[str, str]) -> StoreSettings:
    parts = urlsplit(dsn)
    if not parts.hostname:
        raise SettingsError(f"store DSN {_masked(dsn)!r}: no host")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise SettingsError(f"store DSN {_masked(dsn)!r}: bad port ({exc})") from exc
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if len(segments) > 1 or (segments and "database" in params):
        raise SettingsError(f"store DSN {_masked(dsn)!r}: give the database once, as the only path segment")
    database = segments[0] if segments else _identifier(dsn, params, "database", "default")
    verify = params.get("verify", "true").lower()
    if verify not in ("true", "false", "1", "0") or (
        scheme == "http" and ("verify" in params or "ca_cert" in params)
    ):
        raise SettingsError(f"store DSN {_masked(dsn)!r}: verify=true|false and ca_cert= apply to https only")
    return StoreSettings(
        "https" if scheme == "https" else "http",
        TableName(database, _identifier(dsn, params, "table"), params.get("cluster", "")),
        host=parts.hostname,
        port=port,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        verify_tls=verify in ("true", "1"),
        ca_cert=params.get("ca_cert", ""),
        connect_timeout=_seconds(dsn, params, "connect_timeout", 10.0),
        timeout=_seconds(dsn, params, "timeout", 300.0),
    )


def _identifier(dsn: str, params: Mapping[str, str], key: str, default: str = "network_flows_0") -> str:
    value = params.get(key, default)
    if not value or "\x00" in value:
        raise SettingsError(f"store DSN {_masked(dsn)!r}: {key} must be a non-empty name")
    return value


def _seconds(dsn: str, params: Mapping[str, str], key: str, default: float) -> float:
    try:
        value = float(params.get(key, default))
    except ValueError:
        value = -1.0
    if value <= 0:
        raise SettingsError(f"store DSN {_masked(dsn)!r}: {key} must be a positive number of seconds")
    return value


def _masked(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    return dsn.replace(f":{parts.password}@", ":***@", 1)


def store_settings(
    dsn: str, password_file: str | None = None, environ: Mapping[str, str] | None = None
) -> StoreSettings:
    """The settings for `dsn` with the password taken from exactly one of: DSN, environment, file."""
    settings = parse_dsn(dsn)
    env = os.environ if environ is None else environ
    sources: dict[str, str] = {}
    if settings.password:
        sources["the DSN"] = settings.password
    if env.get(PASSWORD_ENV):
        sources[PASSWORD_ENV] = env[PASSWORD_ENV]
    if password_file:
        sources["--store-password-file"] = _read_secret(password_file)
    if len(sources) > 1:
        raise SettingsError(f"store password given more than once ({' and '.join(sources)}); give it once")
    if sources and settings.embedded:
        raise SettingsError(
            f"the embedded store has no users; remove the password from {next(iter(sources))}"
        )
    password = next(iter(sources.values()), "")
    return replace(settings, password=password)


def _read_secret(path: str) -> str:
    try:
        return Path(path).read_text().rstrip("\r\n")
    except OSError as exc:
        raise SettingsError(f"--store-password-file {path}: cannot read it ({exc.strerror})") from exc
