"""Opening a clickhouse-connect client for a DSN, and the one place its errors become ours.

Embedded and remote stores use the same clickhouse-connect `Client` API; only construction differs.
Both encode inserts with the Rust Native codec (clickhouse-connect-core) when it is installed: 2-3x cheaper
than the Python codec on column-oriented data. clickhouse-connect ignores `native_codec` for its chDB
backend, so there the transform is swapped after construction (`codec_name` reports what is in use).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver import exceptions as ch
from clickhouse_connect.driver.rustcodec import _ch_core_module, _make_native_transform

from kubenetmon.errors import PermanentStoreError, StoreError, TransientStoreError
from kubenetmon.store.dsn import StoreSettings

log = logging.getLogger(__name__)

TRANSIENT_CODES = frozenset(
    {
        3,  # UNEXPECTED_END_OF_FILE
        32,  # ATTEMPT_TO_READ_AFTER_EOF
        159,  # TIMEOUT_EXCEEDED
        202,  # TOO_MANY_SIMULTANEOUS_QUERIES
        203,  # NO_FREE_CONNECTION
        209,  # SOCKET_TIMEOUT
        210,  # NETWORK_ERROR
        236,  # ABORTED
        241,  # MEMORY_LIMIT_EXCEEDED
        242,  # TABLE_IS_READ_ONLY
        243,  # NOT_ENOUGH_SPACE
        252,  # TOO_MANY_PARTS
        279,  # ALL_CONNECTION_TRIES_FAILED
        285,  # TOO_FEW_LIVE_REPLICAS
        286,  # UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE
        319,  # UNKNOWN_STATUS_OF_INSERT
        373,  # SESSION_IS_LOCKED
        394,  # QUERY_WAS_CANCELLED
        425,  # SYSTEM_ERROR
        439,  # CANNOT_SCHEDULE_TASK
        999,  # KEEPER_EXCEPTION
        1000,  # POCO_EXCEPTION
    }
)
_TRANSIENT_HTTP_STATUS = re.compile(r"HTTP status (429|502|503|504)\b")
_OTHER_ENGINE_PATH = re.compile(r"already initialized with path '([^']*)'")


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same request may succeed: network trouble, overload, timeouts, lost status."""
    if isinstance(exc, OSError):
        return True
    if not isinstance(exc, ch.Error):
        return False
    code = exc.code
    if code in TRANSIENT_CODES:
        return True
    if isinstance(exc, ch.StreamFailureError):
        return code is None
    if isinstance(exc, ch.OperationalError):
        return True
    return code is None and bool(_TRANSIENT_HTTP_STATUS.search(str(exc)))


@contextlib.contextmanager
def translated(action: str, settings: StoreSettings) -> Iterator[None]:
    """Re-raise clickhouse-connect and OS errors as Transient/PermanentStoreError naming action and store."""
    try:
        yield
    except StoreError:
        raise
    except (ch.Error, OSError) as exc:
        kind = TransientStoreError if is_transient(exc) else PermanentStoreError
        raise kind(f"{action} on {settings.display()} failed: {exc}") from exc


def open_client(settings: StoreSettings) -> Any:
    """A connected clickhouse-connect client (the handshake has run), with the Rust codec when available."""
    if settings.embedded:
        return _open_embedded(settings)
    if (
        settings.scheme == "http"
        and settings.password
        and settings.host not in ("127.0.0.1", "::1", "localhost")
    ):
        log.warning("store %s: sending the password without TLS", settings.display())
    with translated("connecting", settings):
        return clickhouse_connect.get_client(
            interface=settings.scheme,
            host=settings.host,
            port=settings.port,
            username=settings.username or None,
            password=settings.password,
            secure=settings.scheme == "https",
            verify=settings.verify_tls,
            ca_cert=settings.ca_cert or None,
            connect_timeout=settings.connect_timeout,
            send_receive_timeout=settings.timeout,
            compress="lz4",
            autogenerate_session_id=False,
            native_codec="rust" if rust_codec_available() else "python",
        )


def _open_embedded(settings: StoreSettings) -> Any:
    try:
        Path(settings.path).mkdir(parents=True, exist_ok=True)
        client = clickhouse_connect.get_client(interface="chdb", path=settings.path)
    except ch.ProgrammingError as exc:
        raise PermanentStoreError(_embedded_refusal(settings.path, str(exc))) from exc
    except OSError as exc:
        raise PermanentStoreError(
            f"embedded store {settings.path}: cannot create it ({exc.strerror})"
        ) from exc
    if rust_codec_available():
        # clickhouse-connect ignores native_codec for chDB clients; the transform is the codec.
        client._transform = _make_native_transform("rust")  # type: ignore[attr-defined]
    return client


def _embedded_refusal(path: str, engine_message: str) -> str:
    """Why the embedded engine would not open `path`, in terms of what to do about it."""
    other = _OTHER_ENGINE_PATH.search(engine_message)
    if other:
        return (
            f"embedded store {path}: this process already hosts the embedded engine at {other.group(1)}, "
            "and one process can host only one engine directory"
        )
    holder = lock_holder(path)
    if holder is not None:
        return (
            f"embedded store {path} is in use by another process ({holder}); only one process at a time can "
            "open an engine directory. Stop that process, or give this one a remote store (https://...)"
        )
    return f"embedded store {path}: the engine would not open it: {engine_message}"


def lock_holder(path: str) -> str | None:
    """'PID n: command line' of the process holding the engine lock on `path`, or None if it is free.

    The engine flocks `<path>/status` and writes its PID into it; a SIGKILLed holder's lock is released.
    """
    status = Path(path) / "status"
    try:
        with status.open("rb") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
            else:
                fcntl.flock(handle, fcntl.LOCK_UN)
                return None
            text = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return None
    pid = re.search(r"PID:\s*(\d+)", text)
    if pid is None:
        return "unknown PID"
    try:
        command = Path(f"/proc/{pid.group(1)}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        command = "command line not readable"
    return f"PID {pid.group(1)}: {command}"


def rust_codec_available() -> bool:
    """Whether clickhouse-connect-core's compiled Native codec can be imported."""
    return _ch_core_module() is not None


def codec_name(client: Any) -> str:
    """'rust' or 'python': which Native codec this client encodes inserts with."""
    return "rust" if type(client._transform).__name__.startswith("_Rust") else "python"
