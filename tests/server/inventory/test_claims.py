"""Keys claimed by several owners, released keys lingering for a grace period."""

from __future__ import annotations

from kubenetmon.server.inventory.claims import ClaimTable


def test_a_claimed_key_answers_its_owners_name() -> None:
    table: ClaimTable[str] = ClaimTable()
    table.claim("svc-1", ["10.0.0.1:80"], "ns/web", now=0)
    assert table.resolved == {"10.0.0.1:80": "ns/web"}


def test_two_claimants_resolve_to_the_smallest_name_whatever_the_order() -> None:
    first: ClaimTable[str] = ClaimTable()
    first.claim("a", ["k"], "ns/zeta", now=0)
    first.claim("b", ["k"], "ns/alpha", now=0)
    second: ClaimTable[str] = ClaimTable()
    second.claim("b", ["k"], "ns/alpha", now=0)
    second.claim("a", ["k"], "ns/zeta", now=0)
    assert first.resolved["k"] == second.resolved["k"] == "ns/alpha"


def test_when_one_of_two_claimants_leaves_the_other_answers_at_once() -> None:
    table: ClaimTable[str] = ClaimTable()
    table.claim("a", ["k"], "ns/alpha", now=0)
    table.claim("b", ["k"], "ns/beta", now=0)
    table.release("a", now=1)
    assert table.resolved["k"] == "ns/beta"
    assert table.prune(older_than=100) == 0


def test_a_released_key_keeps_its_answer_until_pruned_after_the_grace_period() -> None:
    table: ClaimTable[str] = ClaimTable()
    table.claim("a", ["k1", "k2"], "ns/web", now=0)
    table.release("a", now=10)
    assert table.resolved == {"k1": "ns/web", "k2": "ns/web"}
    assert table.prune(older_than=9) == 0
    assert table.prune(older_than=10) == 2
    assert table.resolved == {}


def test_reclaiming_a_released_key_cancels_its_expiry() -> None:
    table: ClaimTable[str] = ClaimTable()
    table.claim("a", ["k"], "ns/old", now=0)
    table.release("a", now=10)
    table.claim("b", ["k"], "ns/new", now=11)
    assert table.prune(older_than=1_000) == 0
    assert table.resolved["k"] == "ns/new"


def test_changing_an_owners_keys_releases_only_the_dropped_ones() -> None:
    table: ClaimTable[str] = ClaimTable()
    table.claim("a", ["k1", "k2"], "ns/web", now=0)
    table.claim("a", ["k2", "k3"], "ns/web", now=5)
    assert table.prune(older_than=5) == 1
    assert table.resolved == {"k2": "ns/web", "k3": "ns/web"}


def test_renaming_an_owner_renames_all_its_keys() -> None:
    table: ClaimTable[str] = ClaimTable()
    table.claim("a", ["k1", "k2"], "ns/old", now=0)
    table.claim("a", ["k1", "k2"], "ns/new", now=1)
    assert table.resolved == {"k1": "ns/new", "k2": "ns/new"}


def test_a_multi_claimed_key_survives_a_rename_of_one_claimant() -> None:
    table: ClaimTable[str] = ClaimTable()
    table.claim("a", ["k"], "ns/m", now=0)
    table.claim("b", ["k"], "ns/z", now=0)
    table.claim("b", ["k"], "ns/a", now=1)
    assert table.resolved["k"] == "ns/a"
    table.release("b", now=2)
    assert table.resolved["k"] == "ns/m"


def test_an_owner_claiming_nothing_holds_nothing() -> None:
    table: ClaimTable[str] = ClaimTable()
    table.claim("a", [], "ns/web", now=0)
    table.release("a", now=1)
    assert len(table) == 0
