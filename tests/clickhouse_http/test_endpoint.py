"""The test endpoint speaks the ClickHouse HTTP protocol the way clickhouse-connect and servers expect."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import clickhouse_connect
import lz4.frame
import pytest
from backports import zstd

from tests.clickhouse_http.process import EndpointProcess


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EndpointProcess]:
    with EndpointProcess(tmp_path_factory.mktemp("endpoint") / "engine") as process:
        yield process


def _post(
    endpoint: EndpointProcess,
    body: bytes | Iterator[bytes],
    headers: dict[str, str] | None = None,
    **params: str,
) -> tuple[http.client.HTTPResponse, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=30)
    chunked = not isinstance(body, bytes)
    connection.request(
        "POST", "/?" + urlencode(params), body=body, headers=headers or {}, encode_chunked=chunked
    )
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response, data


def test_an_unmodified_client_completes_its_handshake(endpoint: EndpointProcess) -> None:
    client = clickhouse_connect.get_client(host="127.0.0.1", port=endpoint.port)
    version = client.command("SELECT version()")
    assert client.server_version == version and version.count(".") == 3
    assert client.query("SELECT number * 2 AS n FROM numbers(3)").result_rows == [(0,), (2,), (4,)]
    assert client.ping()


def test_settings_apply_to_their_request_only(endpoint: EndpointProcess) -> None:
    client = clickhouse_connect.get_client(host="127.0.0.1", port=endpoint.port)
    query = "SELECT getSetting('max_block_size')"
    default = client.query(query).result_rows[0][0]
    assert client.query(query, settings={"max_block_size": 1234}).result_rows == [(1234,)]
    assert client.query(query).result_rows == [(default,)] != [(1234,)]


def test_an_insert_of_several_lz4_frames_in_a_chunked_body_is_whole(endpoint: EndpointProcess) -> None:
    _post(endpoint, b"CREATE TABLE frames (n UInt32) ENGINE = MergeTree ORDER BY n")
    frames = [
        lz4.frame.compress(b"INSERT INTO frames FORMAT TabSeparated\n1\n2\n"),
        lz4.frame.compress(b"3\n"),
        lz4.frame.compress(b"4\n5\n"),
    ]
    response, _ = _post(endpoint, iter(frames), {"Content-Encoding": "lz4"})
    assert response.status == 200
    assert '"written_rows": "5"' in response.headers["X-ClickHouse-Summary"]
    assert _post(endpoint, b"SELECT sum(n) FROM frames")[1] == b"15\n"


def test_a_client_insert_of_many_blocks_arrives_complete(endpoint: EndpointProcess) -> None:
    client = clickhouse_connect.get_client(host="127.0.0.1", port=endpoint.port)
    client.command("CREATE TABLE blocks (n UInt32, s String) ENGINE = MergeTree ORDER BY n")
    rows = 30_000
    summary = client.insert(
        "blocks", [list(range(rows)), ["x" * 300] * rows], ["n", "s"], column_oriented=True
    )
    assert summary.written_rows == rows
    assert client.query("SELECT count(), sum(n) FROM blocks").result_rows == [(rows, rows * (rows - 1) // 2)]


def test_errors_come_in_the_servers_form(endpoint: EndpointProcess) -> None:
    response, body = _post(endpoint, b"SELECT * FROM nowhere")
    assert response.status == 404
    assert response.headers["X-ClickHouse-Exception-Code"] == "60"
    assert body.startswith(b"Code: 60. DB::Exception: ") and b"(UNKNOWN_TABLE) (version " in body


def test_a_session_used_concurrently_is_locked(endpoint: EndpointProcess) -> None:
    slow: list[int] = []
    first = threading.Thread(
        target=lambda: slow.append(_post(endpoint, b"SELECT sleep(2)", session_id="busy")[0].status)
    )
    first.start()
    time.sleep(0.5)
    response, body = _post(endpoint, b"SELECT 1", session_id="busy")
    first.join()
    assert slow == [200]
    assert response.headers["X-ClickHouse-Exception-Code"] == "373" and b"SESSION_IS_LOCKED" in body


def test_temporary_tables_live_in_their_session(endpoint: EndpointProcess) -> None:
    _post(endpoint, b"CREATE TEMPORARY TABLE scratch (a UInt8)", session_id="mine")
    assert _post(endpoint, b"SELECT count() FROM scratch", session_id="mine")[1] == b"0\n"
    response, _ = _post(endpoint, b"SELECT count() FROM scratch", session_id="theirs")
    assert response.headers["X-ClickHouse-Exception-Code"] == "60"


def test_responses_are_compressed_as_the_client_accepts(endpoint: EndpointProcess) -> None:
    response, body = _post(endpoint, b"SELECT 42", {"Accept-Encoding": "zstd, gzip"})
    assert response.headers["Content-Encoding"] == "zstd"
    assert zstd.decompress(body) == b"42\n"


def test_ping_answers_ok(endpoint: EndpointProcess) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", endpoint.port, timeout=10)
    connection.request("GET", "/ping")
    assert connection.getresponse().read() == b"Ok.\n"
    connection.close()


def test_the_endpoint_stops_and_restarts_on_the_same_port(tmp_path: Path) -> None:
    process = EndpointProcess(tmp_path / "engine").start()
    try:
        port = process.port
        _post(process, b"CREATE TABLE kept (a UInt8) ENGINE = MergeTree ORDER BY a")
        _post(process, b"INSERT INTO kept VALUES (7)")
        process.stop()
        with pytest.raises(ConnectionRefusedError):
            _post(process, b"SELECT 1")
        process.start()
        assert process.port == port
        assert _post(process, b"SELECT a FROM kept")[1] == b"7\n"
    finally:
        process.stop()
