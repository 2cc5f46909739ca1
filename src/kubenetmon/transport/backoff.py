"""How long the agent waits before reopening a failed stream: exponential, capped, jittered."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Delays grow by `multiplier` per consecutive failure from `initial` up to `maximum`, each spread by
    +-`jitter` (a fraction) so that agents restarted together do not reconnect in lockstep."""

    initial: float = 0.5
    """Seconds before the first retry; short, because most failures are a server restart."""
    multiplier: float = 2.0
    maximum: float = 30.0
    """Cap in seconds. A node buffers in its spool meanwhile, so a long outage costs only catch-up time,
    and 30 s keeps that catch-up prompt (gRPC's own default cap of 120 s would not)."""
    jitter: float = 0.2


def backoff_delay(policy: BackoffPolicy, failures: int, random_fraction: float) -> float:
    """Seconds to wait after `failures` consecutive failures (1 for the first), given a uniform random
    number in [0, 1) that picks the point inside the jitter band."""
    nominal = policy.initial
    for _ in range(1, failures):
        if nominal >= policy.maximum:  # also keeps a long outage from overflowing the float
            break
        nominal *= policy.multiplier
    nominal = min(nominal, policy.maximum)
    return nominal * (1.0 + policy.jitter * (2.0 * random_fraction - 1.0))
