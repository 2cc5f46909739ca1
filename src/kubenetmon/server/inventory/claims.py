"""A key -> name table where several owners may claim one key and released keys linger a while.

Services claim (ip, port, proto) keys with their ClusterIPs and LoadBalancer IPs, and (port, proto)
with their NodePorts; EndpointSlices claim (backend ip, port, proto). Two owners can claim one key
(two Services selecting the same pods); the answer is then the smallest name, so it does not depend
on event order. When the last owner lets go of a key, the key keeps its last answer for the grace
period: conntrack entries outlive the Service or the endpoint that created them.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


def pop_expired(released: dict[K, float], horizon: float) -> list[K]:
    """Remove and return the keys released at or before `horizon` from an oldest-first dict."""
    expired = []
    for key, released_at in released.items():
        if released_at > horizon:
            break
        expired.append(key)
    for key in expired:
        del released[key]
    return expired


class ClaimTable(Generic[K]):
    """key -> name, resolved on every change so that reading is one dict lookup."""

    __slots__ = ("_claimants", "_keys_of", "_name_of", "_released", "resolved")

    def __init__(self) -> None:
        self.resolved: dict[K, str] = {}
        """The answer per key; read this directly on hot paths."""
        # Most keys have one claimant: store its owner id alone, and a dict only when there are several.
        self._claimants: dict[K, str | dict[str, str]] = {}
        self._keys_of: dict[str, frozenset[K]] = {}
        self._name_of: dict[str, str] = {}
        self._released: dict[K, float] = {}
        """Keys nobody claims any more -> when that happened, oldest first."""

    def __len__(self) -> int:
        return len(self.resolved)

    def claim(self, owner: str, keys: Iterable[K], name: str, now: float) -> None:
        """Make `owner`'s claims exactly `keys`, all answering `name`; the keys it drops are released."""
        new = frozenset(keys)
        old = self._keys_of.get(owner, frozenset())
        renamed = self._name_of.get(owner) != name
        self._name_of[owner] = name
        for key in old - new:
            self._unclaim(key, owner, now)
        for key in new if renamed else new - old:
            self._add(key, owner, name)
        if new:
            self._keys_of[owner] = new
        else:
            self._keys_of.pop(owner, None)
            self._name_of.pop(owner, None)

    def release(self, owner: str, now: float) -> None:
        """Drop every claim of `owner` (the object was deleted)."""
        for key in self._keys_of.pop(owner, ()):
            self._unclaim(key, owner, now)
        self._name_of.pop(owner, None)

    def prune(self, older_than: float) -> int:
        """Forget released keys released at or before `older_than`; returns how many were forgotten."""
        expired = pop_expired(self._released, older_than)
        for key in expired:
            del self.resolved[key]
        return len(expired)

    def _add(self, key: K, owner: str, name: str) -> None:
        self._released.pop(key, None)
        current = self._claimants.get(key)
        if current is None or current == owner:
            self._claimants[key] = owner
            self.resolved[key] = name
            return
        if isinstance(current, str):
            current = {current: self._name_of[current]}
            self._claimants[key] = current
        current[owner] = name
        self.resolved[key] = min(current.values())

    def _unclaim(self, key: K, owner: str, now: float) -> None:
        current = self._claimants[key]
        if isinstance(current, str):
            del self._claimants[key]
            self._released[key] = now
            return
        del current[owner]
        if len(current) == 1:
            (remaining,) = current
            self._claimants[key] = remaining
        self.resolved[key] = min(current.values())
