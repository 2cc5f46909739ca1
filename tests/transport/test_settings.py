"""Client and service settings name every problem at once, and their defaults work together."""

from kubenetmon.records import Batch, FlowRecord
from kubenetmon.transport import codec
from kubenetmon.transport.client import ClientSettings
from kubenetmon.transport.service import ServiceSettings
from kubenetmon.transport.tls import TlsSettings

INSECURE = TlsSettings(insecure=True)


def test_the_defaults_are_valid_apart_from_the_certificates() -> None:
    assert ClientSettings(target="kubenetmon-server:7439", tls=INSECURE).problems() == []
    assert ServiceSettings(tls=INSECURE).problems() == []


def test_the_default_agent_batch_fits_the_default_server_limits() -> None:
    assert ClientSettings(target="x").max_records_per_batch <= ServiceSettings().max_records_per_batch


def test_missing_certificates_are_reported_by_default() -> None:
    assert any("--tls-cert is required" in p for p in ServiceSettings().problems())
    assert any("--tls-ca is required" in p for p in ClientSettings(target="x").problems())


def test_client_problems_are_all_listed() -> None:
    settings = ClientSettings(
        target="", tls=INSECURE, max_records_per_batch=10_000, spool_max_bytes=10, ack_timeout=0
    )
    assert settings.problems() == [
        "the server address is required",
        "max records per batch must be 1..8192 and max in flight at least 1",
        "the spool bound 10 is below 1 MiB",
        "the ack timeout must be positive",
    ]


def test_service_limits_below_what_an_agent_may_send_are_refused() -> None:
    settings = ServiceSettings(tls=INSECURE, max_batch_bytes=1000, max_records_per_batch=100)
    assert settings.problems() == [
        "the batch size limit 1000 is below 4 MiB",
        "the records-per-batch limit 100 is below 8192",
    ]


def test_the_largest_batch_an_agent_may_send_fits_the_smallest_server_limit() -> None:
    worst = FlowRecord(
        "n" * 253, 255, 6, "ffff::1", "ffff::2", 65535, 65535, "ffff::3", "ffff::4", 65535, 65535,
        2**64 - 1, 2**64 - 1, 2**64 - 1, 2**64 - 1, 4e9, 4e9,
    )  # fmt: skip
    payload = codec.encode_batch(Batch("n" * 253, "e" * 32, 2**64 - 1, [worst] * 8192))
    assert len(payload) <= 4 * 1024 * 1024
