"""One contract, two state stores: SQLite (the embedded default) and PostgreSQL (shared by instances)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_autoheal.errors import StateError
from otel_autoheal.model import ExceptionRecord, GroupStats, Occurrence
from otel_autoheal.state.postgres import PostgresStore, redacted_url
from otel_autoheal.state.sqlite import MAX_TRACE_IDS_PER_GROUP, SQLiteStore
from tests.postgres_server import PostgresServer

Store = SQLiteStore | PostgresStore


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


class Backend:
    """Opens stores of one kind on one fresh database (SQLite file or PostgreSQL database)."""

    def __init__(self, kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        self._opened: list[Store] = []
        if kind == "sqlite":
            self.target = str(tmp_path / "state.sqlite3")
        else:
            self.target = request.getfixturevalue("pg_server").new_database()

    def open(self) -> Store:
        store: Store = SQLiteStore(self.target) if self.kind == "sqlite" else PostgresStore(self.target)
        self._opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self._opened:
            store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    b = Backend(request.param, tmp_path, request)
    try:
        yield b
    finally:
        b.close_all()


def occurrence(fingerprint: str, *, version: str = "", trace_id: str = "", when: float = 1_700_000_000.0) -> Occurrence:
    exc = ExceptionRecord(
        type="ValueError", message="bad input", stacktrace="", time_unix_nano=int(when * 1e9),
        trace_id=trace_id, span_id="", origin="span_event",
        resource={"service.name": "shop", "service.version": version, "autoheal.source": "cli"},
    )
    return Occurrence(fingerprint=fingerprint, grouping_fields=["ValueError", "app.py:main"],
                      title="ValueError: bad input", body="", exception=exc)


def render(stats: GroupStats) -> tuple[str, str]:
    return f"seen {stats.count}", f"count={stats.count} versions={','.join(stats.versions)} prev={stats.title}"


def test_a_new_fingerprint_opens_a_group_and_a_repeat_counts_in_it(backend: Backend) -> None:
    """The first occurrence creates the group; the second increments it and the renderer sees both counts."""
    store = backend.open()
    first = store.record(occurrence("fp-a"), render, now=1_700_000_100.0)
    second = store.record(occurrence("fp-a", when=1_700_000_050.0), render, now=1_700_000_200.0)
    assert first.is_new and not second.is_new
    group = store.group_by_fingerprint("fp-a")
    assert group is not None and group.count == 2 and group.title == "seen 2"
    assert group.body == "count=2 versions= prev=seen 1"
    assert (group.first_seen, group.last_seen) == (1_700_000_000.0, 1_700_000_050.0)
    assert (group.first_processed, group.last_processed) == (1_700_000_100.0, 1_700_000_200.0)
    assert (group.service, group.exception_type, group.source) == ("shop", "ValueError", "cli")
    assert store.group(group.id) == group


def test_not_found_is_none(backend: Backend) -> None:
    """Unknown ids and fingerprints give None, never an exception."""
    store = backend.open()
    assert store.group(12345) is None and store.group_by_fingerprint("nope") is None
    assert store.groups() == [] and store.group_count() == 0


def test_versions_are_reported_once_and_in_order(backend: Backend) -> None:
    """A version is "new" only the first time a known group sees it; versions keep first-seen order."""
    store = backend.open()
    store.record(occurrence("fp-v", version="1.0", trace_id="01" * 16), render, now=1.0e9)
    again = store.record(occurrence("fp-v", version="1.0", trace_id="02" * 16), render, now=1.0e9 + 1)
    newer = store.record(occurrence("fp-v", version="1.1", trace_id="03" * 16), render, now=1.0e9 + 2)
    assert not again.new_version and newer.new_version
    assert newer.group.versions == ("1.0", "1.1")


def test_trace_ids_are_bounded_newest_first(backend: Backend) -> None:
    """A group keeps its newest MAX_TRACE_IDS_PER_GROUP trace ids, newest first."""
    store = backend.open()
    total = MAX_TRACE_IDS_PER_GROUP + 5
    for i in range(total):
        store.record(occurrence("fp-t", trace_id=f"{i:032x}"), render, now=1.0e9 + i)
    group = store.group_by_fingerprint("fp-t")
    assert group is not None
    assert group.trace_ids == tuple(f"{i:032x}" for i in reversed(range(5, total)))


def test_groups_are_listed_newest_activity_first(backend: Backend) -> None:
    """groups() orders by the errors' own last-seen time and carries versions and traces."""
    store = backend.open()
    store.record(occurrence("old", when=1_600_000_000.0, version="1"), render, now=1.7e9)
    store.record(occurrence("new", when=1_650_000_000.0, trace_id="ab" * 16), render, now=1.7e9)
    listed = store.groups()
    assert [g.fingerprint for g in listed] == ["new", "old"]
    assert listed[0].trace_ids == ("ab" * 16,) and listed[1].versions == ("1",)
    assert store.group_count() == 2


def test_journal_round_trip_and_clearing_by_trace(backend: Backend) -> None:
    """Journalled entries come back in order; clearing a trace up to a high-water mark keeps later ones."""
    store = backend.open()
    store.journal_add([("t1", "span", "p1"), ("t2", "log", "p2")])
    mark = store.journal_high_water()
    store.journal_add([("t1", "span", "p3")])
    assert [e[1:] for e in store.journal_entries()] == [("t1", "span", "p1"), ("t2", "log", "p2"), ("t1", "span", "p3")]
    store.journal_done("t1", up_to_id=mark)
    assert [e[1:] for e in store.journal_entries()] == [("t2", "log", "p2"), ("t1", "span", "p3")]
    store.record(occurrence("fp-j", trace_id="t2"), render, journal_trace=("t2", None))
    assert [e[1:] for e in store.journal_entries()] == [("t1", "span", "p3")]


def test_a_failing_renderer_leaves_nothing_behind(backend: Backend) -> None:
    """An error inside record() rolls the whole occurrence back, journal clearing included."""
    store = backend.open()
    store.journal_add([("t9", "span", "p")])

    def broken(stats: GroupStats) -> tuple[str, str]:
        raise RuntimeError("renderer failed")

    with pytest.raises(RuntimeError):
        store.record(occurrence("fp-x", trace_id="t9"), broken, journal_trace=("t9", None))
    assert store.group_by_fingerprint("fp-x") is None
    assert len(store.journal_entries()) == 1


def test_state_survives_reopening(backend: Backend) -> None:
    """A second store on the same database sees what the first recorded."""
    backend.open().record(occurrence("fp-r"), render)
    again = backend.open().group_by_fingerprint("fp-r")
    assert again is not None and again.count == 1


def test_concurrent_writers_sum_their_counts(backend: Backend) -> None:
    """Two stores (as two instances would) recording one fingerprint at once end with one group and the sum."""
    stores = [backend.open(), backend.open()]
    per_writer = 40
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def work(store: Store, writer: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(per_writer):
                store.record(occurrence("fp-c", version="2.0", trace_id=f"{writer:016x}{i:016x}"), render)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(stores[i % 2], i)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert stores[0].group_count() == 1
    group = stores[1].group_by_fingerprint("fp-c")
    assert group is not None and group.count == 4 * per_writer and group.title == f"seen {4 * per_writer}"


def test_closed_store_refuses_work(backend: Backend) -> None:
    """After close() every call raises StateError, and close() may be called again."""
    store = backend.open()
    store.close()
    with pytest.raises(StateError):
        store.record(occurrence("fp-z"), render)
    store.close()


def test_newer_schema_is_refused_with_a_clear_message(backend: Backend) -> None:
    """A database written by a newer otel-autoheal is refused at open, naming the version."""
    store = backend.open()
    if isinstance(store, SQLiteStore):
        with store.transaction() as conn:
            conn.execute("PRAGMA user_version = 99")
    else:
        with store.transaction() as conn:
            conn.execute("UPDATE autoheal_schema SET version = 99")
    store.close()
    with pytest.raises(StateError, match="schema version 99, newer"):
        backend.open()


def _pg(request: pytest.FixtureRequest) -> PostgresServer:
    server: Any = request.getfixturevalue("pg_server")
    return server


def test_postgres_server_restart_fails_one_call_then_recovers(request: pytest.FixtureRequest) -> None:
    """A restarted PostgreSQL fails the calls made while it is down with StateError; later calls work again."""
    server = _pg(request)
    store = PostgresStore(server.new_database(), connect_timeout=5.0)
    try:
        store.record(occurrence("fp-p", trace_id="01" * 16), render)
        server.stop_server("immediate")
        with pytest.raises(StateError):
            store.record(occurrence("fp-p", trace_id="02" * 16), render)
        server.start()
        store.record(occurrence("fp-p", trace_id="03" * 16), render)
        group = store.group_by_fingerprint("fp-p")
        assert group is not None and group.count == 2
    finally:
        store.close()


def test_postgres_errors_never_show_the_password(request: pytest.FixtureRequest) -> None:
    """An unreachable database is a one-line StateError whose URL has the password masked."""
    url = "postgresql://autoheal:s3cret-pw@127.0.0.1:1/none"
    with pytest.raises(StateError) as info:
        PostgresStore(url, connect_timeout=1.0)
    assert "s3cret-pw" not in str(info.value) and "***" in str(info.value)
    assert redacted_url(url) == "postgresql://autoheal:***@127.0.0.1:1/none"


def test_a_repeated_delivery_is_counted_once(backend: Backend) -> None:
    """The same occurrence recorded again (a retry, a replay) is a duplicate: no count, journal cleared."""
    store = backend.open()
    first = store.record(occurrence("fp-d", trace_id="aa" * 16), render)
    store.journal_add([("aa" * 16, "span", "p")])
    again = store.record(occurrence("fp-d", trace_id="aa" * 16), render, journal_trace=("aa" * 16, None))
    assert not first.duplicate and again.duplicate and not again.is_new
    assert again.group.count == 1 and store.journal_entries() == []
    other = store.record(occurrence("fp-d", trace_id="bb" * 16), render)
    assert not other.duplicate and other.group.count == 2


def test_instances_racing_on_one_delivery_count_it_once(backend: Backend) -> None:
    """Two stores recording the very same occurrences at once count each one exactly once."""
    stores = [backend.open(), backend.open()]
    barrier = threading.Barrier(2)
    results: list[list[bool]] = [[], []]

    def work(index: int) -> None:
        barrier.wait(timeout=30)
        for i in range(30):
            update = stores[index].record(occurrence("fp-race", trace_id=f"{i:032x}"), render)
            results[index].append(update.duplicate)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    group = stores[0].group_by_fingerprint("fp-race")
    assert group is not None and group.count == 30
    assert sum(not d for r in results for d in r) == 30
