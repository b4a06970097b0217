"""The GitHub ledger keeps its contract on both backends: units commit together, "not found" is None,
claims give an item to one instance, budgets admit one write per slot, one instance leads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gh_occurrences import fingerprint
from otel_autoheal.sinks.github.ledger import ClaimLost, GitHubLedger, existing_ledger, ledger_for
from otel_autoheal.state.postgres import PostgresStore
from otel_autoheal.state.sqlite import SQLiteStore

FP = fingerprint("ledger")

Store = SQLiteStore | PostgresStore



class Backend:
    """Opens stores (SQLite file or PostgreSQL database) on one fresh state, as several instances would."""

    def __init__(self, kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        self._opened: list[Store] = []
        self._ledgers: list[GitHubLedger] = []
        self.target = (str(tmp_path / "state.sqlite3") if kind == "sqlite"
                       else request.getfixturevalue("pg_server").new_database())

    def store(self, owner: str = "node0") -> Store:
        store: Store = SQLiteStore(self.target) if self.kind == "sqlite" else PostgresStore(self.target, owner=owner)
        self._opened.append(store)
        return store

    def ledger(self, owner: str = "node0", lease: float = 60.0) -> GitHubLedger:
        ledger = ledger_for(self.store(owner), lease=lease)
        self._ledgers.append(ledger)
        return ledger

    def close_all(self) -> None:
        for ledger in self._ledgers:
            ledger.close()
        for store in self._opened:
            store.close()


def _backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = Backend(request.param, tmp_path, request)
    try:
        yield b
    finally:
        b.close_all()


backend = pytest.fixture(params=["sqlite", "postgres"])(_backend)
postgres = pytest.fixture(params=["postgres"])(_backend)


@pytest.fixture
def ledger(backend: Backend) -> GitHubLedger:
    return backend.ledger()


def test_a_unit_that_raises_leaves_nothing_behind(ledger: GitHubLedger) -> None:
    """Writes of a unit whose block raises are rolled back together; a unit that ends commits them."""
    with pytest.raises(RuntimeError), ledger.unit() as u:
        u.set_issue(FP, count=3)
        u.enqueue("create", FP, {"title": "t"})
        raise RuntimeError("boom")
    assert ledger.get_issue(FP) is None and ledger.counts()["pending"] == 0
    with ledger.unit() as u:
        u.set_issue(FP, count=3, has_in_app=True)
        u.enqueue("create", FP, {"title": "t"})
    row = ledger.get_issue(FP)
    assert row is not None and row.count == 3 and row.has_in_app and ledger.has_pending("create", FP)


def test_not_found_is_none_or_empty(ledger: GitHubLedger) -> None:
    """Lookups of a missing thing return None, collections come back empty, updates of missing rows do nothing."""
    assert ledger.get_issue(FP) is None and ledger.fix(FP) is None and ledger.meta("nothing") is None
    assert ledger.issue_numbers() == {} and ledger.pending() == [] and ledger.first_filed_at() is None
    with ledger.unit() as u:
        assert u.pending_item("comment", FP) is None and u.fix_by_id(99) is None
        assert u.versions_seen_by(FP, 1e12) == [] and u.service_versions(FP) == [] and u.group_last_seen(FP) is None
        u.set_fix(99, state="verified")
    assert ledger.fix_counts()["verified"] == 0 and ledger.claim(99) is None


def test_the_pages_reads_find_the_sinks_rows(ledger: GitHubLedger) -> None:
    """The page's reads (map entries, change mark, outbox history, fixes) see what units wrote, oldest first."""
    with ledger.unit() as u:
        assert u.known_fingerprints() == set() and u.change_mark() == 0.0 and u.issue_created(FP) is None
        assert u.outbox_history(FP) == [] and u.fixes_of(FP) == []
    with ledger.unit() as u:
        u.set_issue(FP, issue_number=7)
        u.enqueue("create", FP, {"title": "t"})
        u.enqueue("comment", FP, {"count": 10})
        u.add_fix(FP, 100.0, 12, "abc", 101.0, "merged")
        u.add_fix(FP, 200.0, None, "def", 201.0, "deployed")
    ledger.fail(ledger.pending()[0].id, "HTTP 422")
    with ledger.unit() as u:
        assert u.known_fingerprints() == {FP} and u.issue_created(FP) is not None and u.change_mark() > 0
        assert [(kind, state, error) for kind, state, _, error in u.outbox_history(FP)] == [
            ("create", "failed", "HTTP 422"), ("comment", "pending", "")]
        assert [(f.pr_number, f.commit_sha, f.state) for f in u.fixes_of(FP)] == [
            (12, "abc", "merged"), (None, "def", "deployed")]


def test_pending_commands_fold_into_one(ledger: GitHubLedger) -> None:
    """merge() folds a second command of a kind into the pending one: newest values win, reasons are joined."""
    with ledger.unit() as u:
        u.merge("comment", FP, {"count": 10, "reasons": ["reached 10 occurrences"]})
        u.merge("comment", FP, {"count": 12, "reasons": ["first occurrence in version `2`"]})
    (item,) = ledger.pending()
    assert item.payload == {"count": 12, "reasons": ["reached 10 occurrences", "first occurrence in version `2`"]}


def test_done_keeps_an_item_whose_payload_changed_meanwhile(ledger: GitHubLedger) -> None:
    """done() is refused for an item whose payload was folded into while it was sent: it stays pending, fresh."""
    with ledger.unit() as u:
        u.enqueue("comment", FP, {"count": 10})
    item = ledger.claim(ledger.pending()[0].id)
    assert item is not None
    ledger.begin_attempt(item.id)
    with ledger.unit() as u:
        u.merge("comment", FP, {"count": 11})
    assert not ledger.done(item, "commented")
    (again,) = ledger.pending()
    assert again.payload == {"count": 11} and again.attempts == 0
    claimed = ledger.claim(again.id)
    assert claimed is not None and ledger.done(claimed, "commented") and ledger.counts()["done"] == 1


def test_meta_labels_and_write_counts_round_trip(ledger: GitHubLedger) -> None:
    """Meta values are replaced, labels remembered once, writes counted by kind (hand-offs and searches apart)."""
    ledger.set_meta("k", "1")
    ledger.set_meta("k", "2")
    ledger.remember_label("autoheal")
    ledger.remember_label("autoheal")
    now = time.time()
    for kind in ("issue", "comment", "handoff", "search"):
        ledger.record_write(kind, now, forget_before=now - 10)
    assert ledger.meta("k") == "2" and ledger.label_known("autoheal") and not ledger.label_known("other")
    assert ledger.writes_since(now - 1) == 2 and ledger.write_times(now - 1, ("issue",)) == [now]


def test_existing_creates_nothing_on_a_state_the_sink_never_used(backend: Backend) -> None:
    """existing_ledger is None (and creates no table) where the GitHub sink never ran."""
    store = backend.store()
    assert existing_ledger(store) is None
    assert existing_ledger(store) is None
    ledger_for(store)
    found = existing_ledger(store)
    assert found is not None and found.issue_numbers() == {}


def test_reserve_write_admits_exactly_the_budget(backend: Backend) -> None:
    """Eight threads (on two ledgers: two instances on PostgreSQL) race for 5 slots: exactly 5 writes are counted."""
    ledgers = [backend.ledger("node0"), backend.ledger("node1")]
    now = time.time()

    def room(writes: list[tuple[float, str]], last_end: float) -> float:
        return 0.0 if sum(1 for _, k in writes if k == "issue") < 5 else 60.0

    admitted: list[int] = []
    start = threading.Barrier(8)

    def racer(i: int) -> None:
        start.wait()
        for _ in range(3):
            if ledgers[i % 2].reserve_write("issue", now, now - 3600, now - 86400, room) <= 0:
                admitted.append(i)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(admitted) == 5 and len(ledgers[0].write_times(now - 1, ("issue",))) == 5


def _pending_item(ledger: GitHubLedger) -> int:
    with ledger.unit() as u:
        return u.enqueue("create", FP, {"title": "t"})


def test_a_claimed_item_is_worked_by_one_instance(postgres: Backend) -> None:
    """Two instances claiming one item: one gets it, the other neither claims nor sees it; writes need the claim."""
    a, b = postgres.ledger("node0"), postgres.ledger("node1")
    item_id = _pending_item(a)
    assert a.claim(item_id) is not None
    assert b.claim(item_id) is None and b.pending() == [] and [i.id for i in a.pending()] == [item_id]
    with pytest.raises(ClaimLost):
        b.begin_attempt(item_id)
    a.begin_attempt(item_id)
    a.defer(item_id, 0.0, None, count_retry=False)  # released: anyone may take it now
    assert b.claim(item_id) is not None and a.claim(item_id) is None


def test_concurrent_claims_never_hand_one_item_to_two(postgres: Backend) -> None:
    """Six instances claim 30 items at once, each trying every item: every item goes to exactly one."""
    ledgers = [postgres.ledger(f"node{i}") for i in range(6)]
    ids = [_pending_item(ledgers[0]) for _ in range(30)]
    won: dict[int, list[str]] = {i: [] for i in ids}
    start = threading.Barrier(len(ledgers))

    def claimer(ledger: GitHubLedger) -> None:
        start.wait()
        for item_id in ids:
            if ledger.claim(item_id) is not None:
                won[item_id].append(ledger.owner)

    threads = [threading.Thread(target=claimer, args=(ledger,)) for ledger in ledgers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(len(owners) == 1 for owners in won.values()), won


def test_an_expired_lease_is_claimable_and_the_old_holder_may_not_write(postgres: Backend) -> None:
    """A holder that stops renewing loses the item when its lease ends; its late write is refused (ClaimLost)."""
    dead, alive = postgres.ledger("dead", lease=0.5), postgres.ledger("alive")
    item_id = _pending_item(dead)
    assert dead.claim(item_id) is not None and alive.claim(item_id) is None
    taken = _wait_until(lambda: alive.claim(item_id), "the lease to run out")
    assert taken is not None and taken.id == item_id
    with pytest.raises(ClaimLost):
        dead.begin_attempt(item_id)


def test_renewed_claims_outlive_their_lease(postgres: Backend) -> None:
    """A live holder renewing its claims keeps the item past the first lease."""
    holder, other = postgres.ledger("holder", lease=1.0), postgres.ledger("other")
    item_id = _pending_item(holder)
    assert holder.claim(item_id) is not None
    deadline = time.time() + 2.5
    while time.time() < deadline:  # renew well inside the lease, as the sink's keeper thread does
        assert holder.renew_claims() == 1
        assert other.claim(item_id) is None
        time.sleep(0.2)


def test_one_instance_leads_and_another_takes_over_when_it_goes(postgres: Backend) -> None:
    """Exactly one of three ledgers leads; when its connection goes, another one leads."""
    ledgers = [postgres.ledger(f"node{i}") for i in range(3)]
    leaders = [lg for lg in ledgers if lg.leads()]
    assert len(leaders) == 1
    leaders[0].close()
    rest = [lg for lg in ledgers if lg is not leaders[0]]
    _wait_until(lambda: any(lg.leads() for lg in rest), "another instance to take the lead")
    assert sum(1 for lg in rest if lg.leads()) == 1


def _wait_until(probe: Callable[[], object], what: str, timeout: float = 30.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
