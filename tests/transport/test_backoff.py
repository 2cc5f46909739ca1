"""The reconnect delay grows exponentially to a cap and is spread by jitter (a pure function)."""

import pytest

from kubenetmon.transport.backoff import BackoffPolicy, backoff_delay

POLICY = BackoffPolicy(initial=0.5, multiplier=2.0, maximum=30.0, jitter=0.2)


def test_the_middle_of_the_jitter_band_is_the_nominal_delay() -> None:
    assert [backoff_delay(POLICY, n, 0.5) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


def test_delays_never_exceed_the_cap_plus_jitter_even_after_many_failures() -> None:
    assert backoff_delay(POLICY, 10_000, 0.999) == pytest.approx(30 * 1.2, rel=1e-3)


@pytest.mark.parametrize("failures", [1, 4, 12])
def test_jitter_spreads_the_delay_by_twenty_percent_either_way(failures: int) -> None:
    nominal = backoff_delay(POLICY, failures, 0.5)
    assert backoff_delay(POLICY, failures, 0.0) == pytest.approx(nominal * 0.8)
    assert backoff_delay(POLICY, failures, 1.0) == pytest.approx(nominal * 1.2)


def test_different_random_draws_give_different_delays() -> None:
    delays = {backoff_delay(POLICY, 3, r / 10) for r in range(10)}
    assert len(delays) == 10
    assert all(1.6 <= d <= 2.4 for d in delays)


def test_zero_failures_waits_the_initial_delay() -> None:
    assert backoff_delay(POLICY, 0, 0.5) == 0.5
