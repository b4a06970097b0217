"""The SQLite state store (WAL mode), the embedded default issue store.

Contract:
- Thread safety: every public method may be called from any thread. Writes go through one
  connection guarded by a lock (the *write lock*) and use ``BEGIN IMMEDIATE``, so several
  *processes* sharing one database file and recording the same new fingerprint end with one
  group, never two.
- Readers never take the write lock: ``read()`` and the read methods (``groups``, ``group``,
  ``group_by_fingerprint``, ``group_count``, ``journal_entries``, ``journal_high_water``) use
  read-only connections from a small pool; WAL lets them read the last committed state while a
  writer (here or in another process) is in its transaction. Each call is one snapshot and sees
  every transaction committed before it started, including this process's own.
- "Not found" is ``None`` (``group``, ``group_by_fingerprint``), never an exception.
- Every write is one transaction: a crash leaves the previous or the next state, never half.
- Sinks that need their own tables (e.g. the GitHub outbox) call ``transaction()`` and create
  them with ``CREATE TABLE IF NOT EXISTS``; table names are prefixed with the sink's name.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otel_autoheal.errors import StateBusy, StateError
from otel_autoheal.model import GroupRecord, GroupUpdate, Occurrence
from otel_autoheal.state._readers import ReaderPool

__all__ = ["GroupStats", "SQLiteStore"]

#: How many distinct trace ids are kept per group (newest first); older ones are dropped.
MAX_TRACE_IDS_PER_GROUP = 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS groups (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint     TEXT NOT NULL UNIQUE,
    title           TEXT NOT NULL,
    body            TEXT NOT NULL,
    count           INTEGER NOT NULL,
    first_seen      REAL NOT NULL,
    last_seen       REAL NOT NULL,
    service         TEXT NOT NULL,
    exception_type  TEXT NOT NULL,
    source          TEXT NOT NULL,
    grouping_fields TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS group_versions (
    group_id   INTEGER NOT NULL REFERENCES groups(id),
    version    TEXT NOT NULL,
    first_seen REAL NOT NULL,
    PRIMARY KEY (group_id, version)
);
CREATE TABLE IF NOT EXISTS intake_journal (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    trace_id TEXT NOT NULL,
    kind     TEXT NOT NULL,
    payload  TEXT NOT NULL,
    received REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS intake_journal_trace ON intake_journal (trace_id);
CREATE TABLE IF NOT EXISTS group_traces (
    group_id INTEGER NOT NULL REFERENCES groups(id),
    trace_id TEXT NOT NULL,
    seen     REAL NOT NULL,
    PRIMARY KEY (group_id, trace_id)
);
"""


@dataclass(frozen=True)
class GroupStats:
    """The numbers a renderer needs about a group, including the occurrence being recorded."""

    count: int
    first_seen: float
    last_seen: float
    versions: tuple[str, ...]


Renderer = Callable[[GroupStats], tuple[str, str]]


class SQLiteStore:
    """Groups and occurrences in one SQLite file under the state directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open state database {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        self._closed = False
        self._readers = ReaderPool(self.path)

    @classmethod
    def in_dir(cls, state_dir: str | Path) -> SQLiteStore:
        return cls(Path(state_dir) / "autoheal.sqlite3")

    @contextmanager
    def transaction(self, wait: float | None = None) -> Iterator[sqlite3.Connection]:
        """Run the block in one ``BEGIN IMMEDIATE`` transaction, committed on success.

        ``wait`` bounds how long to wait for the write lock (this process's and the database's);
        past it ``StateBusy`` is raised before the block runs. Default: the connection's busy timeout.
        """
        if not self._lock.acquire(timeout=-1 if wait is None else wait):
            raise StateBusy(f"the write lock on {self.path} is busy in this process")
        try:
            if self._closed:
                raise StateError("state store is closed")
            self._begin(wait)
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                try:
                    self._conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    raise StateError(f"cannot commit to {self.path}: {exc}") from exc
        finally:
            self._lock.release()

    def _begin(self, wait: float | None) -> None:
        previous = self._conn.execute("PRAGMA busy_timeout").fetchone()[0] if wait is not None else None
        try:
            if wait is not None:
                self._conn.execute(f"PRAGMA busy_timeout={int(wait * 1000)}")
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY:
                raise StateBusy(f"{self.path} is locked by another writer: {exc}") from exc
            raise StateError(f"cannot start a transaction on {self.path}: {exc}") from exc
        finally:
            if previous is not None:
                self._conn.execute(f"PRAGMA busy_timeout={int(previous)}")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection for the block, one snapshot; never waits for the write lock."""
        try:
            with self._readers.read() as conn:
                yield conn
        except sqlite3.Error as exc:
            raise StateError(f"cannot read {self.path}: {exc}") from exc

    # -- intake journal -----------------------------------------------------------------------
    # Failed spans and exception log records are written here before the receiver acknowledges
    # them, and removed in the transaction that records their trace: a crash (SIGKILL, power loss)
    # between the two replays them at the next start instead of losing an acknowledged error.

    def journal_add(self, entries: list[tuple[str, str, str]], conn: sqlite3.Connection | None = None) -> None:
        """Append ``(trace_id, kind, payload)`` entries in one transaction (``conn``'s, if given)."""
        if not entries:
            return
        now = time.time()
        rows = [(t, k, p, now) for t, k, p in entries]
        sql = "INSERT INTO intake_journal (trace_id, kind, payload, received) VALUES (?, ?, ?, ?)"
        if conn is not None:
            conn.executemany(sql, rows)
            return
        with self.transaction() as own:
            own.executemany(sql, rows)

    def journal_entries(self) -> list[tuple[int, str, str, str]]:
        """Every journalled ``(id, trace_id, kind, payload)``, oldest first."""
        with self.read() as conn:
            return [
                (int(r[0]), str(r[1]), str(r[2]), str(r[3]))
                for r in conn.execute("SELECT id, trace_id, kind, payload FROM intake_journal ORDER BY id")
            ]

    def journal_done(self, trace_id: str, up_to_id: int | None = None, conn: sqlite3.Connection | None = None) -> None:
        """Forget the entries journalled under ``trace_id`` (a trace id, or a trace-less log's own key,
        see ``otlp.journal_key``), only those up to ``up_to_id`` if given."""
        sql = "DELETE FROM intake_journal WHERE trace_id = ?"
        args: tuple[object, ...] = (trace_id,)
        if up_to_id is not None:
            sql, args = sql + " AND id <= ?", (trace_id, up_to_id)
        if conn is not None:
            conn.execute(sql, args)
            return
        with self.transaction() as own:
            own.execute(sql, args)

    def journal_high_water(self) -> int:
        """The newest committed journal id (receivers commit before handing data on, so it covers it)."""
        with self.read() as conn:
            row = conn.execute("SELECT COALESCE(MAX(id), 0) FROM intake_journal").fetchone()
            return int(row[0])

    def record(self, occurrence: Occurrence, render: Renderer, now: float | None = None,
               journal_trace: tuple[str, int | None] | None = None) -> GroupUpdate:
        """Count ``occurrence`` in its group (creating the group if new) and store the rendered issue.

        ``render`` receives the group's numbers including this occurrence and returns
        ``(title, body)``; it runs inside the transaction so the stored body matches the counts.
        ``journal_trace`` (trace id, high-water id) clears that trace's intake journal in the same
        transaction.
        """
        now = time.time() if now is None else now
        exc = occurrence.exception
        version = exc.service_version
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT id, count, first_seen FROM groups WHERE fingerprint = ?",
                (occurrence.fingerprint,),
            ).fetchone()
            is_new = row is None
            if is_new:
                cur = conn.execute(
                    "INSERT INTO groups (fingerprint, title, body, count, first_seen, last_seen,"
                    " service, exception_type, source, grouping_fields)"
                    " VALUES (?, '', '', 1, ?, ?, ?, ?, ?, ?)",
                    (
                        occurrence.fingerprint,
                        now,
                        now,
                        exc.service_name,
                        exc.type,
                        exc.source,
                        json.dumps(occurrence.grouping_fields),
                    ),
                )
                group_id = int(cur.lastrowid or 0)
                count, first_seen = 1, now
            else:
                group_id, count, first_seen = int(row[0]), int(row[1]) + 1, float(row[2])
            new_version = False
            if version:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO group_versions (group_id, version, first_seen) VALUES (?, ?, ?)",
                    (group_id, version, now),
                )
                new_version = cur.rowcount == 1
            if exc.trace_id:
                conn.execute(
                    "INSERT OR REPLACE INTO group_traces (group_id, trace_id, seen) VALUES (?, ?, ?)",
                    (group_id, exc.trace_id, now),
                )
                conn.execute(
                    "DELETE FROM group_traces WHERE group_id = ? AND trace_id NOT IN"
                    " (SELECT trace_id FROM group_traces WHERE group_id = ? ORDER BY seen DESC LIMIT ?)",
                    (group_id, group_id, MAX_TRACE_IDS_PER_GROUP),
                )
            versions = self._versions(conn, group_id)
            title, body = render(GroupStats(count, first_seen, now, versions))
            conn.execute(
                "UPDATE groups SET title = ?, body = ?, count = ?, last_seen = ?, source ="
                " CASE WHEN source = '' THEN ? ELSE source END WHERE id = ?",
                (title, body, count, now, exc.source, group_id),
            )
            group = self._load(conn, "id = ?", (group_id,))
            if journal_trace is not None:
                self.journal_done(journal_trace[0], journal_trace[1], conn)
        assert group is not None
        return GroupUpdate(group=group, occurrence=occurrence, is_new=is_new, new_version=new_version and not is_new)

    def groups(self) -> list[GroupRecord]:
        """Every group with its body, newest activity first (three queries, whatever the number of groups)."""
        with self.read() as conn:
            versions: dict[int, list[str]] = {}
            for group_id, version in conn.execute(
                "SELECT group_id, version FROM group_versions ORDER BY group_id, first_seen, version"
            ):
                versions.setdefault(group_id, []).append(version)
            traces: dict[int, list[str]] = {}
            for group_id, trace_id in conn.execute(
                "SELECT group_id, trace_id FROM group_traces ORDER BY group_id, seen DESC"
            ):
                traces.setdefault(group_id, []).append(trace_id)
            rows = conn.execute(f"SELECT {_GROUP_COLS} FROM groups ORDER BY last_seen DESC, id DESC").fetchall()
        return [_group(row, tuple(versions.get(row[0], ())), tuple(traces.get(row[0], ()))) for row in rows]

    def group_count(self) -> int:
        """How many groups there are, without reading them (cheap enough for every scrape)."""
        with self.read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM groups").fetchone()[0])

    def group(self, group_id: int) -> GroupRecord | None:
        with self.read() as conn:
            return self._load(conn, "id = ?", (group_id,))

    def group_by_fingerprint(self, fingerprint: str) -> GroupRecord | None:
        with self.read() as conn:
            return self._load(conn, "fingerprint = ?", (fingerprint,))

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._readers.close()
                self._conn.close()

    @staticmethod
    def _versions(conn: sqlite3.Connection, group_id: int) -> tuple[str, ...]:
        return tuple(
            r[0]
            for r in conn.execute(
                "SELECT version FROM group_versions WHERE group_id = ? ORDER BY first_seen, version", (group_id,)
            )
        )

    def _load(self, conn: sqlite3.Connection, where: str, args: tuple[object, ...]) -> GroupRecord | None:
        row = conn.execute(f"SELECT {_GROUP_COLS} FROM groups WHERE {where}", args).fetchone()
        if row is None:
            return None
        traces = tuple(
            r[0]
            for r in conn.execute(
                "SELECT trace_id FROM group_traces WHERE group_id = ? ORDER BY seen DESC", (row[0],)
            )
        )
        return _group(row, self._versions(conn, row[0]), traces)


_GROUP_COLS = "id, fingerprint, title, body, count, first_seen, last_seen, service, exception_type, source"


def _group(row: Any, versions: tuple[str, ...], trace_ids: tuple[str, ...]) -> GroupRecord:
    """A ``groups`` row (``_GROUP_COLS``) with its versions and trace ids."""
    return GroupRecord(
        id=row[0],
        fingerprint=row[1],
        title=row[2],
        body=row[3],
        count=row[4],
        first_seen=row[5],
        last_seen=row[6],
        service=row[7],
        exception_type=row[8],
        source=row[9],
        versions=versions,
        trace_ids=trace_ids,
    )
