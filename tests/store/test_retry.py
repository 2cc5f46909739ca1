"""Which failures are retried, and how long the store waits between attempts."""

from __future__ import annotations

import random

import pytest
from clickhouse_connect.driver import exceptions as ch

from kubenetmon.store.client import is_transient
from kubenetmon.store.sink import RetryPolicy


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ch.OperationalError("Error executing HTTP request"), True),
        (ConnectionRefusedError(111, "Connection refused"), True),
        (ch.DatabaseError("Code: 252. Too many parts", code=252), True),
        (ch.DatabaseError("Code: 319. Unknown status of insert", code=319), True),
        (ch.DatabaseError("HTTP driver received HTTP status 503"), True),
        (ch.DatabaseError("Code: 60. Unknown table", code=60), False),
        (ch.DatabaseError("Code: 516. Authentication failed", code=516), False),
        (ch.DatabaseError("HTTP driver received HTTP status 404"), False),
        (ch.StreamFailureError("Code: 62. Syntax error", code=62), False),
        (ch.ProgrammingError("Insert data column count does not match column names"), False),
        (ValueError("not a store error at all"), False),
    ],
)
def test_failures_that_may_pass_are_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    policy = RetryPolicy(attempts=8, first_delay=0.5, max_delay=4.0)
    rng = random.Random(1)
    for retry, cap in enumerate([0.5, 1.0, 2.0, 4.0, 4.0, 4.0], start=1):
        delays = [policy.delay(retry, rng) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.9


def test_a_policy_without_attempts_is_refused() -> None:
    with pytest.raises(ValueError, match="attempts >= 1"):
        RetryPolicy(attempts=0)
