"""The chDB side of the endpoint: connection handles per HTTP session, per-request settings, statements.

chDB allows one engine directory per process and any number of connection handles to it. Each HTTP
session gets its own handle (so SET, USE and temporary tables persist within it, as on a server);
requests without a session borrow a pooled handle. A handle remembers which URL settings and database it
has applied, so each request sends only the difference and per-request settings revert afterwards.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import chdb

TRANSPORT_PARAMS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "session_id",
        "session_timeout",
        "session_check",
        "query_id",
        "quota_key",
        "compress",
        "decompress",
        "wait_end_of_query",
        "client_protocol_version",
        "role",
        "buffer_size",
        "user",
        "password",
    }
)
"""URL parameters that steer the HTTP layer and must never reach the engine as settings."""

_CODE = re.compile(r"Code: (\d+)\. ")


class EngineError(Exception):
    """An engine exception in ClickHouse's own form: `Code: N. DB::Exception: ... (NAME)`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @classmethod
    def named(cls, code: int, name: str, text: str) -> EngineError:
        """An error of our own, in the engine's form."""
        return cls(code, f"Code: {code}. DB::Exception: {text}. ({name})")

    @classmethod
    def from_engine(cls, exc: BaseException) -> EngineError:
        text = str(exc)
        found = _CODE.search(text)
        if found is None:
            return cls.named(1001, "STD_EXCEPTION", text.strip())
        return cls(int(found.group(1)), text[found.start() :].strip())


@dataclass(slots=True)
class Handle:
    """One chDB connection handle and what the endpoint has applied to it."""

    conn: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    settings: dict[str, str] = field(default_factory=dict)
    database: str = "default"
    last_used: float = field(default_factory=time.monotonic)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Engine:
    """Owns the engine directory for this process and hands out prepared handles."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._guard = threading.Lock()
        self._sessions: dict[str, Handle] = {}
        self._timeouts: dict[str, float] = {}
        self._pool: list[Handle] = []
        first = self._open()
        self.version = first.conn.query("SELECT version()", "TabSeparated").bytes().decode().strip()
        self._pool.append(first)

    def _open(self) -> Handle:
        return Handle(chdb.connect(self.path))

    @contextlib.contextmanager
    def handle(self, session_id: str, session_timeout: float, session_check: bool) -> Iterator[Handle]:
        """A handle for one request: the session's own (373 if it is busy), or a pooled one."""
        if not session_id:
            with self._guard:
                handle = self._pool.pop() if self._pool else None
            handle = handle or self._open()
            try:
                yield handle
            finally:
                with self._guard:
                    self._pool.append(handle)
            return
        handle = self._session(session_id, session_timeout, session_check)
        if not handle.lock.acquire(blocking=False):
            raise EngineError.named(
                373, "SESSION_IS_LOCKED", f"Session {session_id} is locked by a concurrent client"
            )
        try:
            yield handle
        finally:
            handle.last_used = time.monotonic()
            handle.lock.release()

    def _session(self, session_id: str, timeout: float, check: bool) -> Handle:
        with self._guard:
            self._expire_sessions()
            handle = self._sessions.get(session_id)
            if handle is None:
                if check:
                    raise EngineError.named(372, "SESSION_NOT_FOUND", f"Session {session_id} not found")
                handle = self._sessions[session_id] = self._open()
            self._timeouts[session_id] = timeout
            return handle

    def _expire_sessions(self) -> None:
        now = time.monotonic()
        for session_id, handle in list(self._sessions.items()):
            if now - handle.last_used > self._timeouts[session_id] and not handle.lock.locked():
                del self._sessions[session_id], self._timeouts[session_id]
                handle.conn.close()

    def prepare(self, handle: Handle, settings: Mapping[str, str], database: str) -> None:
        """Make the handle's settings and database exactly these (only the differences are sent)."""
        for name, value in settings.items():
            if handle.settings.get(name) != value:
                self._run(handle, f"SET {name} = {_quote(value)}")
                handle.settings[name] = value
        for name in [name for name in handle.settings if name not in settings]:
            self._run(handle, f"SET {name} = DEFAULT")
            del handle.settings[name]
        if database != handle.database:
            self._run(handle, f"USE `{database}`")
            handle.database = database

    @staticmethod
    def _run(
        handle: Handle, sql: str, fmt: str = "TabSeparated", params: Mapping[str, str] | None = None
    ) -> Any:
        try:
            return handle.conn.query(sql, fmt, params=dict(params or {}))
        except Exception as exc:
            raise EngineError.from_engine(exc) from exc

    def query(
        self, handle: Handle, sql: str, fmt: str, params: Mapping[str, str]
    ) -> tuple[bytes, dict[str, str]]:
        """Run one statement; its output in `fmt` and an X-ClickHouse-Summary dict."""
        result = self._run(handle, sql, fmt, params)
        output = result.bytes() or b""
        summary = {
            "read_rows": str(result.rows_read()),
            "read_bytes": str(result.bytes_read()),
            "written_rows": "0",
            "written_bytes": "0",
            "result_bytes": str(len(output)),
            "elapsed_ns": str(int(result.elapsed() * 1e9)),
        }
        return output, summary

    def insert(self, handle: Handle, statement: str, fmt: str, data: bytes) -> dict[str, str]:
        """Stream `data` (in `fmt`) into `statement` (an INSERT without FORMAT); the summary of the write."""
        try:
            with handle.conn.send_insert(statement, fmt) as inserter:
                if data:
                    inserter.append(data)
                result = inserter.finish()
        except Exception as exc:
            raise EngineError.from_engine(exc) from exc
        return {
            "read_rows": "0",
            "read_bytes": "0",
            "written_rows": str(result.rows_written),
            "written_bytes": str(result.bytes_written),
            "elapsed_ns": str(int(result.elapsed * 1e9)),
        }

    def close(self) -> None:
        with self._guard:
            for handle in [*self._pool, *self._sessions.values()]:
                handle.conn.close()
            self._pool.clear()
            self._sessions.clear()
