"""GitHubLedger keeps the contract its docstring states: units commit together, "not found" is None."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gh_occurrences import fingerprint
from otel_autoheal.sinks.github.ledger import GitHubLedger
from otel_autoheal.state.sqlite import SQLiteStore

FP = fingerprint("ledger")


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[GitHubLedger]:
    store = SQLiteStore.in_dir(tmp_path)
    yield GitHubLedger(store)
    store.close()


def test_a_unit_that_raises_leaves_nothing_behind(ledger: GitHubLedger) -> None:
    """Writes of a unit whose block raises are rolled back together; a unit that ends commits them."""
    with pytest.raises(RuntimeError), ledger.unit() as u:
        u.set_issue(FP, count=3)
        u.enqueue("create", FP, {"title": "t"})
        raise RuntimeError("boom")
    assert ledger.get_issue(FP) is None and ledger.counts()["pending"] == 0
    with ledger.unit() as u:
        u.set_issue(FP, count=3)
        u.enqueue("create", FP, {"title": "t"})
    row = ledger.get_issue(FP)
    assert row is not None and row.count == 3 and ledger.has_pending("create", FP)


def test_not_found_is_none_or_empty(ledger: GitHubLedger) -> None:
    """Lookups of a missing thing return None, collections come back empty, updates of missing rows do nothing."""
    assert ledger.get_issue(FP) is None and ledger.fix(FP) is None and ledger.meta("nothing") is None
    assert ledger.issue_numbers() == {} and ledger.pending() == [] and ledger.first_filed_at() is None
    with ledger.unit() as u:
        assert u.pending_item("comment", FP) is None and u.fix_by_id(99) is None
        assert u.versions_seen_by(FP, 1e12) == [] and u.service_versions(FP) == [] and u.group_last_seen(FP) is None
        u.set_fix(99, state="verified")
    assert ledger.fix_counts()["verified"] == 0


def test_pending_commands_fold_into_one(ledger: GitHubLedger) -> None:
    """merge() folds a second command of a kind into the pending one: newest values win, reasons are joined."""
    with ledger.unit() as u:
        u.merge("comment", FP, {"count": 10, "reasons": ["reached 10 occurrences"]})
        u.merge("comment", FP, {"count": 12, "reasons": ["first occurrence in version `2`"]})
    (item,) = ledger.pending()
    assert item.payload == {"count": 12, "reasons": ["reached 10 occurrences", "first occurrence in version `2`"]}


def test_existing_creates_nothing_on_a_state_the_sink_never_used(tmp_path: Path) -> None:
    """GitHubLedger.existing is None (and creates no table) where the GitHub sink never ran."""
    store = SQLiteStore.in_dir(tmp_path)
    try:
        assert GitHubLedger.existing(store) is None
        assert GitHubLedger.existing(store) is None
        GitHubLedger(store)
        found = GitHubLedger.existing(store)
        assert found is not None and found.issue_numbers() == {}
    finally:
        store.close()
