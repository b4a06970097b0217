# Over 400 lines on purpose: one store, one contract (the same as state/postgres.py), its SQL kept next to the
# transaction it runs in; file-identity checks and migrations belong to the same connection handling.
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
- The core schema is versioned (``PRAGMA user_version`` = ``SCHEMA_VERSION``): older files are
  migrated at open, a newer one is refused (StateError) rather than misread.
- A damaged file is refused at open when ``verify=True`` (``PRAGMA quick_check``; see
  ``otel_autoheal.state.repair``); any SQLite error becomes a one-line StateError naming the file.
- The store notices when its file is deleted, replaced or overwritten while open (``lost``) and
  then refuses every write: writing on would damage somebody else's file.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from otel_autoheal.errors import StateBusy, StateError
from otel_autoheal.model import GroupRecord, GroupStats, GroupUpdate, Occurrence
from otel_autoheal.state._batch import BatchTally, GroupTally, SingleRenderer, stamps
from otel_autoheal.state._dialect import SQLITE, PortableConn
from otel_autoheal.state._history import record_history_many
from otel_autoheal.state._protocol import IssueRenderer
from otel_autoheal.state._readers import ReaderPool

__all__ = ["OCCURRENCE_KEY_SECONDS", "SCHEMA_VERSION", "SQLiteStore", "damaged_message", "is_damaged", "occurrence_time"]

log = logging.getLogger("otel_autoheal.state")

#: Version of the core schema in ``PRAGMA user_version``. 0: before versions existed (first_seen /
#: last_seen were processing times); 1: first_seen / last_seen are the errors' own times, with
#: first_processed / last_processed alongside.
SCHEMA_VERSION = 1
#: An error's own timestamp further in the future than this (seconds) is a wrong sender clock.
MAX_CLOCK_SKEW_SECONDS = 300.0
#: An error's own timestamp before this (2000-01-01) is a missing or broken sender clock.
MIN_PLAUSIBLE_TIME = 946_684_800.0
#: How long opening the state file is retried while other processes hold it busy (see ``_is_busy``).
OPEN_BUSY_SECONDS = 30.0
#: Writes check at most this often (seconds) that the file is still the one opened.
IDENTITY_CHECK_INTERVAL = 0.5

#: How many distinct trace ids are kept per group (newest first); older ones are dropped.
MAX_TRACE_IDS_PER_GROUP = 20
#: Seconds an occurrence's key is kept to recognise a repeated delivery of it (retries, replays).
OCCURRENCE_KEY_SECONDS = 7 * 24 * 3600.0

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
    grouping_fields TEXT NOT NULL,
    first_processed REAL NOT NULL DEFAULT 0,
    last_processed  REAL NOT NULL DEFAULT 0
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
CREATE TABLE IF NOT EXISTS occurrence_keys (
    key      TEXT PRIMARY KEY,
    group_id INTEGER NOT NULL,
    seen     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS occurrence_keys_seen ON occurrence_keys (seen);
CREATE TABLE IF NOT EXISTS group_traces (
    group_id INTEGER NOT NULL REFERENCES groups(id),
    trace_id TEXT NOT NULL,
    seen     REAL NOT NULL,
    PRIMARY KEY (group_id, trace_id)
);
"""


#: Columns added since version 0, with their migration from a version-0 file (where first_seen /
#: last_seen were processing times, the best figure there is for both).
_MIGRATION_1 = (
    "ALTER TABLE groups ADD COLUMN first_processed REAL NOT NULL DEFAULT 0",
    "ALTER TABLE groups ADD COLUMN last_processed REAL NOT NULL DEFAULT 0",
    "UPDATE groups SET first_processed = first_seen, last_processed = last_seen",
)

_SQLITE_MAGIC = b"SQLite format 3\x00"
_OVERWRITTEN = "overwritten in place by other content"


def occurrence_time(time_unix_nano: int, processed: float) -> float:
    """The error's own time in seconds, or ``processed`` when the sender's clock cannot be believed.

    Zero (no timestamp), before 2000 or more than ``MAX_CLOCK_SKEW_SECONDS`` ahead of our clock:
    a group must never look "last seen" next year because one client's clock is wrong.
    """
    occurred = time_unix_nano / 1e9
    if occurred < MIN_PLAUSIBLE_TIME or occurred > processed + MAX_CLOCK_SKEW_SECONDS:
        return processed
    return occurred


def is_damaged(exc: sqlite3.Error) -> bool:
    """True when SQLite says the file is corrupt or not a database at all."""
    return getattr(exc, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or any(
        text in str(exc) for text in ("malformed", "not a database")
    )


def _is_busy(exc: sqlite3.Error) -> bool:
    """True when another connection holds a lock the statement needed (SQLITE_BUSY and its extended codes)."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


def damaged_message(path: Path, problem: str) -> str:
    """One line: what is wrong with the file and the two ways out."""
    problem = " ".join(problem.replace("*** in database main ***", "").split())[:300]
    return (f"state database {path} is damaged ({problem}); stop every otel-autoheal using it, then run "
            f"`otel-autoheal repair --state {path.parent}` (moves it aside as a backup and salvages the readable "
            f"rows), or move the file away to start empty")


Renderer = Callable[[GroupStats], tuple[str, str]]


class SQLiteStore:
    """Groups and occurrences in one SQLite file under the state directory."""

    #: How the SQL shared with PostgreSQL runs here (the page's reads, the history).
    dialect = SQLITE

    def __init__(self, path: str | Path, verify: bool = False) -> None:
        """Open (creating or migrating) the database; ``verify`` runs ``PRAGMA quick_check`` first."""
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create the state directory {self.path.parent}: {exc.strerror or exc} "
                             "(choose another --state / AUTOHEAL_STATE_DIR)") from None
        deadline = time.monotonic() + OPEN_BUSY_SECONDS
        while True:
            try:
                conn, self._instance_id = self._open(verify)
                break
            except sqlite3.Error as exc:
                if _is_busy(exc) and time.monotonic() < deadline:
                    # Processes opening one new state file at once: switching it to WAL and the first
                    # migration can fail with SQLITE_BUSY at once, without SQLite's busy handler.
                    time.sleep(random.uniform(0.02, 0.2))
                    continue
                if is_damaged(exc):
                    raise StateError(damaged_message(self.path, str(exc))) from None
                raise StateError(f"cannot open state database {self.path}: {exc} (check that the directory is "
                                 "writable, or choose another --state / AUTOHEAL_STATE_DIR)") from None
        self._conn = conn
        self._lock = threading.RLock()
        self._closed = False
        #: Why the file at ``path`` is no longer this database (deleted, replaced), or None.
        self.lost: str | None = None
        # Opened once and kept: closing any descriptor of the file would drop this process's POSIX
        # locks on it, SQLite's included (another process could then checkpoint and delete our WAL).
        self._fd = os.open(self.path, os.O_RDONLY)
        stat = os.fstat(self._fd)
        self._file_key = (stat.st_dev, stat.st_ino)
        self._header_confirmed = False
        self._overwritten = False
        self._checked_at = 0.0
        self._check_lock = threading.Lock()
        self._readers = ReaderPool(self.path)

    def _open(self, verify: bool) -> tuple[sqlite3.Connection, int]:
        """Connect, set the connection up and migrate; returns the connection and the file's instance id."""
        conn = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False)
        try:
            if verify:
                problems = [str(r[0]) for r in conn.execute("PRAGMA quick_check(3)")]
                if problems != ["ok"]:
                    raise StateError(damaged_message(self.path, "; ".join(problems)))
            # Asked first: setting it, even to the mode the file already has, takes a lock.
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # Freed pages (cleared journal entries, replaced rows) are overwritten with zeros, in the
            # file and the WAL, instead of lingering until reused.
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            return conn, self._migrate(conn)
        except BaseException:
            conn.close()
            raise

    def _migrate(self, conn: sqlite3.Connection) -> int:
        """Create or upgrade the core schema in one transaction; return the file's instance id."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"state database {self.path} has schema version {version}, newer than this otel-autoheal "
                    f"knows ({SCHEMA_VERSION}): upgrade otel-autoheal, or choose another --state / "
                    "AUTOHEAL_STATE_DIR")
            for statement in (*_SCHEMA.split(";"), *SQLITE.history_schema):
                if statement.strip():
                    conn.execute(statement)
            columns = {str(r[1]) for r in conn.execute("PRAGMA table_info(groups)")}
            if "first_processed" not in columns:
                for statement in _MIGRATION_1:
                    conn.execute(statement)
                log.info("migrated %s to schema version %d", self.path, SCHEMA_VERSION)
            if version != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            # A random id in the header's application_id field identifies this very file, so that
            # a file copied over it while we run is recognised (its inode alone would not change).
            instance_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
            if instance_id == 0:
                instance_id = secrets.randbelow(2**31 - 1) + 1
                conn.execute(f"PRAGMA application_id = {instance_id}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        # Copy the header into the main file now, so that its id can be checked from the start.
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        return instance_id

    def _file_problem(self) -> str | None:
        """Why the file at ``path`` is not the database this store opened, or None."""
        try:
            stat = os.stat(self.path)
            if (stat.st_dev, stat.st_ino) != self._file_key:
                return "replaced by another file"
            header = os.pread(self._fd, 100, 0)
        except FileNotFoundError:
            return "deleted"
        except OSError as exc:
            return f"unreadable ({exc.strerror or exc})"
        same = header[:16] == _SQLITE_MAGIC and int.from_bytes(header[68:72], "big", signed=True) == self._instance_id
        if same:
            self._header_confirmed = True
        # Until a checkpoint has copied our header into the main file it may still show the old id.
        return None if same or not self._header_confirmed else _OVERWRITTEN

    def check_file(self) -> str | None:
        """Check that the file is still ours; on the first failure log it and refuse further writes.

        Under its own lock, not the store's: a health check must not wait behind a long read.
        """
        with self._check_lock:
            self._checked_at = time.monotonic()
            if self.lost is None and not self._closed:
                problem = self._file_problem()
                self._overwritten = problem == _OVERWRITTEN
                if problem is not None:
                    self.lost = f"state database {self.path} was {problem} while otel-autoheal was running"
                    log.error("%s: no longer writing to it; restart otel-autoheal to open the file now at that "
                              "path", self.lost)
            return self.lost

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
            if self.lost is None and time.monotonic() - self._checked_at >= IDENTITY_CHECK_INTERVAL:
                self.check_file()
            if self.lost is not None:
                raise StateError(self.lost)
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
            if _is_busy(exc):
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

    def journal_entries(self, received_before: float | None = None) -> list[tuple[int, str, str, str]]:
        """Every journalled ``(id, trace_id, kind, payload)`` (only those received before
        ``received_before``, a Unix time, if given), oldest first."""
        with self.read() as conn:
            return [
                (int(r[0]), str(r[1]), str(r[2]), str(r[3]))
                for r in conn.execute(
                    "SELECT id, trace_id, kind, payload FROM intake_journal WHERE received < ? ORDER BY id",
                    (float("inf") if received_before is None else received_before,),
                )
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

    def journal_rekey(self, pairs: list[tuple[str, int]]) -> None:
        """Give entries ``(new key, id)`` new journal keys (entries of old versions had none)."""
        with self.transaction() as conn:
            conn.executemany("UPDATE intake_journal SET trace_id = ? WHERE id = ?", pairs)

    def adopt_orphans(self) -> list[tuple[int, str, str, str]]:
        """Always empty: one file has one journal, replayed by whoever opens it (see PostgresStore)."""
        return []

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
        journal = [journal_trace] if journal_trace is not None else []
        return self.record_many([occurrence], SingleRenderer(render), now, journal)[0]

    def record_many(self, occurrences: Sequence[Occurrence], renderer: IssueRenderer, now: float | None = None,
                    journal: Sequence[tuple[str, int | None]] = ()) -> list[GroupUpdate]:
        """Count ``occurrences`` in order, in one transaction, and store each group's issue rendered once.

        Stores what ``record`` called for each in turn would store (see ``state._batch``); an
        occurrence whose key was counted before, or earlier in the batch, is a duplicate. ``journal``
        lists ``(trace id, high-water id)`` whose intake journal is cleared in the same
        transaction. Returns one update per occurrence, in order. Nothing is stored if it raises.
        """
        batch = BatchTally(renderer)
        with self.transaction() as conn:
            for occurrence, stamp in zip(occurrences, stamps(len(occurrences), now), strict=True):
                self._count(conn, batch, occurrence, stamp)
            groups: dict[int, GroupRecord] = {}
            for tally in batch.groups.values():
                self._store_tally(conn, batch, tally)
            for group_id in batch.group_ids():
                group = self._load(conn, "id = ?", (group_id,))
                assert group is not None
                groups[group_id] = group
            for trace_id, up_to in journal:
                self.journal_done(trace_id, up_to, conn)
        return batch.updates(groups)

    def _count(self, conn: sqlite3.Connection, batch: BatchTally, occurrence: Occurrence, now: float) -> None:
        exc = occurrence.exception
        occurred = occurrence_time(exc.time_unix_nano, now)
        tally = batch.groups.get(occurrence.fingerprint)
        row: Any = None
        if tally is None:
            row = conn.execute(
                "SELECT id, count, first_seen, last_seen, title FROM groups WHERE fingerprint = ?",
                (occurrence.fingerprint,),
            ).fetchone()
        if tally is not None or row is not None:
            group_id = tally.group_id if tally is not None else int(row[0])
            if occurrence.key in batch.keys or conn.execute(
                "SELECT 1 FROM occurrence_keys WHERE key = ?", (occurrence.key,)
            ).fetchone() is not None:
                batch.duplicate(occurrence, group_id)
                return
        if tally is None:
            if row is None:
                cur = conn.execute(
                    "INSERT INTO groups (fingerprint, title, body, count, first_seen, last_seen, first_processed,"
                    " last_processed, service, exception_type, source, grouping_fields)"
                    " VALUES (?, '', '', 1, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (occurrence.fingerprint, occurred, occurred, now, now, exc.service_name, exc.type, exc.source,
                     json.dumps(occurrence.grouping_fields)),
                )
                tally = GroupTally(int(cur.lastrowid or 0), True, 0, occurred, occurred, [], "")
            else:
                group_id = int(row[0])
                versions = conn.execute(
                    "SELECT first_seen, version FROM group_versions WHERE group_id = ?", (group_id,)
                ).fetchall()
                tally = GroupTally(group_id, False, int(row[1]), float(row[2]), float(row[3]),
                                   sorted((float(t), str(v)) for t, v in versions), str(row[4]))
            batch.groups[occurrence.fingerprint] = tally
        new_version = False
        version = exc.service_version
        if version and not tally.has_version(version):
            conn.execute("INSERT INTO group_versions (group_id, version, first_seen) VALUES (?, ?, ?)",
                         (tally.group_id, version, now))
            batch.add_version(tally, version, now)
            new_version = True
        if exc.trace_id:
            conn.execute("INSERT OR REPLACE INTO group_traces (group_id, trace_id, seen) VALUES (?, ?, ?)",
                         (tally.group_id, exc.trace_id, now))
        conn.execute("INSERT INTO occurrence_keys (key, group_id, seen) VALUES (?, ?, ?)",
                     (occurrence.key, tally.group_id, now))
        batch.count(tally, occurrence, occurred, now, new_version)
        if tally.count % 256 == 0:  # now and then, not on every write
            conn.execute("DELETE FROM occurrence_keys WHERE seen < ?", (now - OCCURRENCE_KEY_SECONDS,))

    @staticmethod
    def _store_tally(conn: sqlite3.Connection, batch: BatchTally, tally: GroupTally) -> None:
        """Write a group's numbers, history and issue after the batch (once per group)."""
        group_id = tally.group_id
        if tally.traced:
            conn.execute(
                "DELETE FROM group_traces WHERE group_id = ? AND trace_id NOT IN"
                " (SELECT trace_id FROM group_traces WHERE group_id = ? ORDER BY seen DESC LIMIT ?)",
                (group_id, group_id, MAX_TRACE_IDS_PER_GROUP),
            )
        record_history_many(PortableConn(conn, SQLITE), group_id, tally.history, tally.processed)
        title, body = batch.render(tally)
        conn.execute(
            "UPDATE groups SET title = ?, body = ?, count = ?, first_seen = ?, last_seen = ?, last_processed = ?,"
            " source = CASE WHEN source = '' THEN ? ELSE source END WHERE id = ?",
            (title, body, tally.count, tally.first_seen, tally.last_seen, tally.processed, tally.source, group_id),
        )

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
        """Close the database; when it was ``lost``, without letting our WAL reach the new file.

        SQLite leaves the WAL behind when the file was deleted or renamed over (it skips the final
        checkpoint), and the next opener of whatever is at the path would replay it there; after an
        in-place overwrite, closing would checkpoint it straight into the new content. So the WAL
        is moved aside first, and after an overwrite the connection is left open: the process must
        then exit without closing it (``otel-autoheal serve`` does).
        """
        with self._lock, self._check_lock:
            if self._closed:
                return
            self._closed = True
            if self.lost is not None:
                self._move_wal_aside()
                if self._overwritten:
                    return
            self._readers.close()
            self._conn.close()
            os.close(self._fd)  # only now: see __init__

    def _move_wal_aside(self) -> None:
        orphan = f"{self.path}-wal.orphaned-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        try:
            os.rename(f"{self.path}-wal", orphan)
            log.error("moved this process's write-ahead log aside to %s so that it is never applied to the "
                      "file now at %s", orphan, self.path)
        except OSError:
            pass
        try:
            os.unlink(f"{self.path}-shm")
        except OSError:
            pass

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


_GROUP_COLS = ("id, fingerprint, title, body, count, first_seen, last_seen, service, exception_type, source,"
               " first_processed, last_processed")


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
        first_processed=row[10],
        last_processed=row[11],
    )
