"""The HTTP layer: ClickHouse's URL parameters, bodies, headers and error form, over `engine.Engine`.

What clickhouse-connect relies on (observed on the wire, see clickhouse-engine-facts.md §2): queries and
commands as POST bodies (or `?query=`), `FORMAT` taken from the statement or `default_format`,
TabSeparated otherwise; Native inserts as `INSERT ... FORMAT Native\\n<blocks>` in (several) lz4 frames
with chunked transfer; settings as URL parameters applied to this request only; `param_*` bindings;
`X-ClickHouse-Summary`, `X-ClickHouse-Exception-Code` and `Code: N. DB::Exception: ...` bodies.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.clickhouse_http import bodies
from tests.clickhouse_http.engine import TRANSPORT_PARAMS, Engine, EngineError

_INSERT_HEAD = re.compile(
    rb"\A\s*(INSERT\s+INTO\s.*?)\s+FORMAT\s+(\w+)[ \t]*\r?\n", re.IGNORECASE | re.DOTALL
)
_INSERT_QUERY = re.compile(r"\A\s*(INSERT\s+INTO\s.*?)\s+FORMAT\s+(\w+)\s*\Z", re.IGNORECASE | re.DOTALL)
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*\Z", re.IGNORECASE)
_STATUS_BY_CODE = {
    16: 400, 27: 400, 36: 400, 46: 400, 47: 400, 48: 501, 53: 400, 62: 400, 115: 400, 117: 400,
    60: 404, 81: 404, 372: 404, 373: 400, 192: 403, 497: 403, 516: 403,
}  # fmt: skip
_CONTENT_TYPES = {"TabSeparated": "text/tab-separated-values; charset=UTF-8", "JSON": "application/json"}


class EndpointServer(ThreadingHTTPServer):
    """One engine, many request threads; optional fault injection for retry tests."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], engine: Engine, drop_insert_responses: int = 0) -> None:
        super().__init__(address, Handler)
        self.engine = engine
        self.timezone = engine.version and _engine_timezone(engine)
        self._drops_left = drop_insert_responses
        self._drops_lock = threading.Lock()

    def take_drop(self) -> bool:
        """Whether to lose the response of the insert that just committed (an ambiguous failure)."""
        with self._drops_lock:
            if self._drops_left <= 0:
                return False
            self._drops_left -= 1
            return True


def _engine_timezone(engine: Engine) -> str:
    with engine.handle("", 60, False) as handle:
        output, _ = engine.query(handle, "SELECT timezone()", "TabSeparated", {})
    return output.decode().strip()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EndpointServer

    def setup(self) -> None:
        super().setup()
        # Without it every small response waits out Nagle + delayed ACK (~40 ms per request).
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read failures from responses, not from the endpoint's stderr."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        query_id = params.get("query_id") or str(uuid.uuid4())
        try:
            body = bodies.decode(
                bodies.read_body(
                    self.rfile, self.headers.get("Content-Length"), self.headers.get("Transfer-Encoding")
                ),
                self.headers.get("Content-Encoding"),
            )
        except (bodies.BodyError, ValueError) as exc:
            self._error(
                query_id,
                EngineError.named(
                    27, "CANNOT_PARSE_INPUT_ASSERTION_FAILED", f"Cannot read request body: {exc}"
                ),
            )
            return
        if url.path in ("/ping", "/replicas_status") or (
            url.path == "/" and not body and "query" not in params
        ):
            self._reply(HTTPStatus.OK, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        if url.path != "/":
            self._reply(HTTPStatus.NOT_FOUND, b"There is no handle " + url.path.encode() + b"\n", {})
            return
        try:
            self._execute(params, body, query_id)
        except EngineError as exc:
            self._error(query_id, exc)

    def _execute(self, params: dict[str, str], body: bytes, query_id: str) -> None:
        if (
            params.get("compress") == "1"
            or params.get("decompress") == "1"
            or "multipart/" in (self.headers.get("Content-Type") or "")
        ):
            raise EngineError.named(
                48, "NOT_IMPLEMENTED", "compress/decompress and multipart bodies are not implemented here"
            )
        settings = {
            k: v for k, v in params.items() if k not in TRANSPORT_PARAMS and not k.startswith("param_")
        }
        bindings = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        database = params.get("database") or self.headers.get("X-ClickHouse-Database") or "default"
        engine = self.server.engine
        session = params.get("session_id", "")
        with engine.handle(
            session, float(params.get("session_timeout") or 60), params.get("session_check") == "1"
        ) as handle:
            engine.prepare(handle, settings, database)
            insert = _as_insert(params.get("query", ""), body)
            if insert is not None:
                statement, fmt, data = insert
                summary = engine.insert(handle, statement, fmt, data)
                if self.server.take_drop():
                    self.close_connection = True
                    self.request.shutdown(socket.SHUT_RDWR)
                    return
                self._reply(HTTPStatus.OK, b"", self._headers(query_id, summary, "TabSeparated"))
                return
            sql = "\n".join(part for part in (params.get("query", ""), body.decode()) if part)
            fmt = _output_format(sql, params.get("default_format") or self.headers.get("X-ClickHouse-Format"))
            output, summary = engine.query(handle, sql, fmt, bindings)
        encoding = (
            bodies.pick_encoding(self.headers.get("Accept-Encoding"))
            if settings.get("enable_http_compression", "1") != "0"
            else None
        )
        headers = self._headers(query_id, summary, fmt)
        if encoding and output:
            output = bodies.encode(output, encoding)
            headers["Content-Encoding"] = encoding
        self._reply(HTTPStatus.OK, output, headers)

    def _headers(self, query_id: str, summary: dict[str, str], fmt: str) -> dict[str, str]:
        return {
            "Content-Type": _CONTENT_TYPES.get(fmt, "application/octet-stream"),
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.server.timezone,
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Summary": json.dumps(summary),
            "X-ClickHouse-Server-Display-Name": "kubenetmon-test-endpoint",
        }

    def _error(self, query_id: str, exc: EngineError) -> None:
        text = f"{exc.message} (version {self.server.engine.version})\n".encode()
        self._reply(
            HTTPStatus(_STATUS_BY_CODE.get(exc.code, 500)),
            text,
            {
                "Content-Type": "text/plain; charset=UTF-8",
                "X-ClickHouse-Query-Id": query_id,
                "X-ClickHouse-Exception-Code": str(exc.code),
            },
        )

    def _reply(self, status: HTTPStatus, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)


def _as_insert(query_param: str, body: bytes) -> tuple[str, str, bytes] | None:
    """(statement without FORMAT, format, data) when the request is an insert with data, else None."""
    if query_param:
        found = _INSERT_QUERY.match(query_param)
        return (found.group(1), found.group(2), body) if found else None
    head = _INSERT_HEAD.match(body)
    if head is None:
        return None
    return head.group(1).decode(), head.group(2).decode(), body[head.end() :]


def _output_format(sql: str, default: str | None) -> str:
    found = _TRAILING_FORMAT.search(sql)
    return found.group(1) if found else (default or "TabSeparated")
