"""Who held an address when: the rule that resolves a reused pod IP at a flow's time. Pure.

Each pod that ever held an address (within the retention window) leaves a `Holding` on it:
[since, until], where `since` is the pod's start time and `until` is infinity while the pod runs,
the moment we saw it complete (Succeeded/Failed: the sandbox and its address are released then,
though the object may linger for days), or the moment we saw it deleted.

`holder_at` picks, for a time `when`:
1. among holdings that cover `when`, a running pod over a completed one, then the newest start;
2. else, among holdings that ended before `when`, the one that ended last: late conntrack entries
   of a pod that just went away still find it;
3. else (`when` precedes every known holding: clock skew between nodes and the API server),
   the earliest one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from kubenetmon.records import Endpoint


@dataclass(slots=True)
class Holding:
    """One pod's tenure of one address."""

    uid: str
    endpoint: Endpoint
    since: float
    until: float = math.inf
    completed: bool = False
    """The tenure ended because the pod completed, not because it was deleted or lost the address."""


def holder_at(holdings: Sequence[Holding], when: float) -> Endpoint:
    """The endpoint that held the address at `when` (see the module docstring). `holdings` is not empty."""
    best = holdings[0]
    best_rank = _rank(best, when)
    for holding in holdings[1:]:
        rank = _rank(holding, when)
        if rank > best_rank:
            best, best_rank = holding, rank
    return best.endpoint


def _rank(holding: Holding, when: float) -> tuple[int, bool, float]:
    if holding.since <= when <= holding.until:
        return 2, not holding.completed, holding.since
    if holding.until < when:
        return 1, False, holding.until
    return 0, False, -holding.since
