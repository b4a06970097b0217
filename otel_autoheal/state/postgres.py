# Over 400 lines on purpose: one store, one contract (the same as state/sqlite.py), its SQL kept next to the
# transaction it runs in; the schema, journal and group methods are read together when the contract changes.
"""The PostgreSQL state store: what several otel-autoheal instances share when one is not enough.

Contract (the same as ``SQLiteStore``'s where they overlap; ``tests/state/test_store_contract.py``
runs one suite against both):
- Thread safety: every public method may be called from any thread; connections come from a
  bounded psycopg pool (``pool_size``), one per call, so readers never wait for a writer.
- Concurrency across instances: recording the same fingerprint at the same moment from several
  instances yields one group whose count is the sum. The group row is created with
  ``INSERT … ON CONFLICT DO NOTHING`` and then locked (``SELECT … FOR UPDATE``) for the rest of the
  transaction, so the renderer always sees the count it is rendering, never a lost update.
- "Not found" is ``None`` (``group``, ``group_by_fingerprint``), never an exception.
- Every write is one transaction; a lost connection or a restarted server fails that call with a
  one-line ``StateError`` (the pool reconnects for the next call; nothing half-written remains).
- The schema is versioned in ``autoheal_schema`` (one row); it is created or migrated at start-up
  under an advisory lock (instances starting together do it once), and a database with a newer
  version than this code knows is refused with a message naming it.
- Passwords in the URL never appear in messages (``redacted_url``).
- The intake journal is per instance (``owner``): each instance replays only what it journalled,
  and an instance that stops renewing its heartbeat for ``JOURNAL_LEASE_SECONDS`` leaves its
  entries to the next live instance that calls ``adopt_orphans`` (so a machine that never comes
  back loses nothing that it acknowledged).
- ``record`` also writes the page's occurrence history (``_history``, the same statements as on
  SQLite) in its transaction, under the group's row lock. Group ids come from a sequence that every
  insert attempt advances (a known fingerprint's too), so they skip numbers.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from otel_autoheal.errors import StateBusy, StateError
from otel_autoheal.model import GroupRecord, GroupUpdate, Occurrence
from otel_autoheal.state._batch import BatchTally, GroupTally, SingleRenderer, stamps
from otel_autoheal.state._dialect import POSTGRES, PortableConn
from otel_autoheal.state._history import record_history_many
from otel_autoheal.state._protocol import IssueRenderer
from otel_autoheal.state.sqlite import MAX_TRACE_IDS_PER_GROUP, OCCURRENCE_KEY_SECONDS, Renderer, occurrence_time

__all__ = ["JOURNAL_LEASE_SECONDS", "SCHEMA_VERSION", "PostgresStore", "is_postgres_url", "redacted_url"]

log = logging.getLogger("otel_autoheal.state")

#: Version of the PostgreSQL schema in ``autoheal_schema.version``. 1: groups, versions, traces
#: and the intake journal, with the errors' own times and the processing times side by side;
#: 2: the page's occurrence history (``_history``) and the indexes the page sorts by. Every
#: statement of ``_SCHEMA`` is ``IF NOT EXISTS``, so migrating from 1 is running them all.
SCHEMA_VERSION = 2

#: Seconds without a heartbeat after which an instance's journal entries are adopted by another.
JOURNAL_LEASE_SECONDS = 30.0
#: Seconds between heartbeats (well inside the lease).
HEARTBEAT_INTERVAL = 5.0

#: Seconds the calls behind /healthz and /metrics wait for a connection (they must answer quickly).
_QUICK_WAIT = 1.0

#: Key of the transaction-level advisory lock taken while the schema is created or migrated.
_SCHEMA_LOCK = 0x6175746F6865616C  # "autoheal"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS autoheal_schema (only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),"
    " version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS groups (
        id              BIGSERIAL PRIMARY KEY,
        fingerprint     TEXT NOT NULL UNIQUE,
        title           TEXT NOT NULL,
        body            TEXT NOT NULL,
        count           BIGINT NOT NULL,
        first_seen      DOUBLE PRECISION NOT NULL,
        last_seen       DOUBLE PRECISION NOT NULL,
        service         TEXT NOT NULL,
        exception_type  TEXT NOT NULL,
        source          TEXT NOT NULL,
        grouping_fields TEXT NOT NULL,
        first_processed DOUBLE PRECISION NOT NULL DEFAULT 0,
        last_processed  DOUBLE PRECISION NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS groups_last_seen ON groups (last_seen DESC, id DESC)",
    """CREATE TABLE IF NOT EXISTS group_versions (
        group_id   BIGINT NOT NULL REFERENCES groups(id),
        version    TEXT NOT NULL,
        first_seen DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (group_id, version)
    )""",
    """CREATE TABLE IF NOT EXISTS occurrence_keys (
        key      TEXT PRIMARY KEY,
        group_id BIGINT NOT NULL,
        seen     DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS occurrence_keys_seen ON occurrence_keys (seen)",
    """CREATE TABLE IF NOT EXISTS group_traces (
        group_id BIGINT NOT NULL REFERENCES groups(id),
        trace_id TEXT NOT NULL,
        seen     DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (group_id, trace_id)
    )""",
    """CREATE TABLE IF NOT EXISTS intake_journal (
        id       BIGSERIAL PRIMARY KEY,
        owner    TEXT NOT NULL,
        trace_id TEXT NOT NULL,
        kind     TEXT NOT NULL,
        payload  TEXT NOT NULL,
        received DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS intake_journal_owner_trace ON intake_journal (owner, trace_id)",
    """CREATE TABLE IF NOT EXISTS instances (
        id        TEXT PRIMARY KEY,
        heartbeat DOUBLE PRECISION NOT NULL
    )""",
    *POSTGRES.history_schema,
)

_GROUP_COLS = (
    "id, fingerprint, title, body, count, first_seen, last_seen, service, exception_type, source,"
    " first_processed, last_processed"
)

_TRACES = "SELECT trace_id FROM group_traces WHERE group_id = %s ORDER BY seen DESC"

_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def is_postgres_url(value: str) -> bool:
    """True for ``postgresql://…`` and ``postgres://…`` URLs (the forms libpq accepts)."""
    return value.startswith(("postgresql://", "postgres://"))


def redacted_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, safe for logs and error messages."""
    return _URL_PASSWORD.sub(r"\1***@", url)


class PostgresStore:
    """Groups, occurrences and the intake journal in a PostgreSQL database shared by instances."""

    #: How the SQL shared with SQLite runs here (the page's reads, the history).
    dialect = POSTGRES

    def __init__(self, url: str, owner: str = "", pool_size: int = 8, connect_timeout: float = 10.0) -> None:
        """Connect, then create or migrate the schema; ``StateError`` names what failed.

        ``owner`` names this instance's intake journal (default: host name and process id; give a
        stable one, e.g. host:port, so that a restarted instance replays its own entries at once).
        ``pool_size`` bounds this instance's connections (default 8); ``connect_timeout`` bounds
        the wait for the first connection at start-up and for a free one later (default 10 s).
        """
        try:
            import psycopg
            from psycopg_pool import ConnectionPool, PoolTimeout
        except ImportError:  # pragma: no cover - depends on the install
            raise StateError(
                "a PostgreSQL database_url needs psycopg: pip install 'otel-autoheal[postgres]'"
            ) from None
        self.url = url
        self.where = redacted_url(url)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        # Only a serving instance (one that names itself) announces itself; a reader (the
        # `issues` command) must not look like an instance that died.
        self._beats = bool(owner)
        #: Always None: a database server cannot be swapped under us the way a file can.
        self.lost: str | None = None
        self._beat_at = 0.0
        self._psycopg = psycopg
        self._pool_timeout = PoolTimeout
        self._timeout = connect_timeout
        self._closed = False
        self._close_lock = threading.Lock()
        try:
            self._pool = ConnectionPool(
                url, min_size=1, max_size=max(1, pool_size), timeout=connect_timeout, open=False,
                kwargs={"autocommit": False, "connect_timeout": max(1, int(connect_timeout))},
                # A connection that died with a restarted server is replaced, not handed out.
                check=ConnectionPool.check_connection,
            )
            self._pool.open(wait=True, timeout=connect_timeout)
        except Exception as exc:
            raise StateError(f"cannot connect to the state database {self.where}: {_one_line(exc)}") from None
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    # -- connections --------------------------------------------------------------------------

    @contextmanager
    def transaction(self, wait: float | None = None, pipelined: bool = False) -> Iterator[Any]:
        """One transaction on a pooled connection, committed on success, rolled back on error.

        ``wait`` bounds the wait for a free connection (default: ``connect_timeout``); past it
        ``StateBusy`` is raised before the block runs. Database errors become ``StateError``
        naming the database (never the password). ``pipelined`` runs the block in psycopg's
        pipeline mode: statements are sent as they are executed but only waited for when a
        result is fetched, so the statements between two fetches (``BEGIN`` with the first,
        ``COMMIT`` with the last) cost one round trip; a failed statement raises at that fetch or
        at the end of the block, and the transaction is rolled back.
        """
        if self._closed:
            raise StateError("state store is closed")
        try:
            conn_cm = self._pool.connection(timeout=self._timeout if wait is None else wait)
            conn = conn_cm.__enter__()
        except self._pool_timeout as exc:
            raise StateBusy(f"no connection to the state database {self.where} was free in time") from exc
        except self._psycopg.Error as exc:
            raise StateError(f"state database {self.where}: {_one_line(exc)}") from exc
        try:
            try:
                with self._pipelined(conn) if pipelined else conn.transaction():
                    yield conn
            except self._psycopg.Error as exc:
                raise StateError(f"state database {self.where}: {_one_line(exc)}") from exc
        except BaseException as exc:
            conn_cm.__exit__(type(exc), exc, exc.__traceback__)
            raise
        conn_cm.__exit__(None, None, None)

    @contextmanager
    def _pipelined(self, conn: Any) -> Iterator[None]:
        # psycopg waits for its own BEGIN and COMMIT in pipeline mode; sent as statements (the
        # connection in autocommit for the while) they travel with the first and last batches.
        conn.autocommit = True
        try:
            with conn.pipeline():
                conn.execute("BEGIN")
                yield
                conn.execute("COMMIT")
        finally:
            try:
                if conn.info.transaction_status != self._psycopg.pq.TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")
                conn.autocommit = False
            except self._psycopg.Error:
                conn.close()  # the pool replaces a closed connection, never hands out this one
                raise

    read = transaction  # a read is one snapshot transaction too; it never blocks writers

    def journal_rekey(self, pairs: list[tuple[str, int]]) -> None:
        """Give entries ``(new key, id)`` new journal keys (entries of old versions had none)."""
        with self.transaction() as conn, conn.cursor() as cur:
            cur.executemany("UPDATE intake_journal SET trace_id = %s WHERE id = %s", pairs)

    def _migrate(self) -> None:
        with self.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            conn.execute(_SCHEMA[0])
            row = conn.execute("SELECT version FROM autoheal_schema").fetchone()
            version = int(row[0]) if row else 0
            if version > SCHEMA_VERSION:
                raise StateError(
                    f"state database {self.where} has schema version {version}, newer than this otel-autoheal "
                    f"knows ({SCHEMA_VERSION}): upgrade otel-autoheal, or point database_url elsewhere")
            for statement in _SCHEMA[1:]:
                conn.execute(statement)
            if row is None:
                conn.execute("INSERT INTO autoheal_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
            elif version != SCHEMA_VERSION:
                conn.execute("UPDATE autoheal_schema SET version = %s", (SCHEMA_VERSION,))
                log.info("migrated %s to schema version %d", self.where, SCHEMA_VERSION)
        self.check_file()

    @property
    def path(self) -> str:
        """Where the state is, for messages (the URL without its password)."""
        return self.where

    def check_file(self) -> str | None:
        """Renew this instance's heartbeat (at most every ``HEARTBEAT_INTERVAL``); always None.

        Named like ``SQLiteStore.check_file`` because the service calls it on the same schedule.
        """
        now = time.time()
        if not self._beats or now - self._beat_at < HEARTBEAT_INTERVAL:
            return None
        self._beat_at = now  # also after a failure: retried at the next interval, never in a loop
        try:
            with self.transaction(wait=_QUICK_WAIT) as conn:
                conn.execute(
                    "INSERT INTO instances (id, heartbeat) VALUES (%s, %s)"
                    " ON CONFLICT (id) DO UPDATE SET heartbeat = EXCLUDED.heartbeat",
                    (self.owner, now),
                )
        except StateError as exc:
            log.warning("cannot renew the heartbeat of %s: %s", self.owner, exc)
        return None

    def adopt_orphans(self, lease: float = JOURNAL_LEASE_SECONDS) -> list[tuple[int, str, str, str]]:
        """Take over the journal entries of instances silent for ``lease`` seconds; return them.

        The caller replays them as its own (they are then cleared like its own entries).
        """
        with self.transaction() as conn:
            dead = [str(r[0]) for r in conn.execute(
                "DELETE FROM instances WHERE heartbeat < %s AND id <> %s RETURNING id",
                (time.time() - lease, self.owner),
            ).fetchall()]
            if not dead:
                return []
            rows = conn.execute(
                "UPDATE intake_journal SET owner = %s WHERE owner = ANY(%s) RETURNING id, trace_id, kind, payload",
                (self.owner, dead),
            ).fetchall()
        if rows:
            log.warning("adopted %d intake journal entries of instance(s) %s, silent for over %gs",
                        len(rows), ", ".join(dead), lease)
        return sorted((int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows)

    # -- intake journal -----------------------------------------------------------------------

    def journal_add(self, entries: list[tuple[str, str, str]], conn: Any = None) -> None:
        """Append ``(trace_id, kind, payload)`` entries in one transaction (``conn``'s, if given)."""
        if not entries:
            return
        now = time.time()
        rows = [(self.owner, t, k, p, now) for t, k, p in entries]
        sql = "INSERT INTO intake_journal (owner, trace_id, kind, payload, received) VALUES (%s, %s, %s, %s, %s)"
        if conn is not None:
            with conn.cursor() as cur:
                cur.executemany(sql, rows)
            return
        with self.transaction() as own, own.cursor() as cur:
            cur.executemany(sql, rows)

    def journal_entries(self, received_before: float | None = None) -> list[tuple[int, str, str, str]]:
        """This instance's journalled ``(id, trace_id, kind, payload)`` (only those received before
        ``received_before``, a Unix time, if given), oldest first."""
        with self.read() as conn:
            rows = conn.execute(
                "SELECT id, trace_id, kind, payload FROM intake_journal WHERE owner = %s AND received < %s ORDER BY id",
                (self.owner, float("inf") if received_before is None else received_before),
            ).fetchall()
        return [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    def journal_done(self, trace_id: str, up_to_id: int | None = None, conn: Any = None) -> None:
        """Forget the entries journalled under ``trace_id``, only those up to ``up_to_id`` if given."""
        sql = "DELETE FROM intake_journal WHERE owner = %s AND trace_id = %s"
        args: tuple[object, ...] = (self.owner, trace_id)
        if up_to_id is not None:
            sql, args = sql + " AND id <= %s", (*args, up_to_id)
        if conn is not None:
            conn.execute(sql, args)
            return
        with self.transaction() as own:
            own.execute(sql, args)

    def journal_high_water(self) -> int:
        """The newest committed journal id of this instance.

        Ids come from one sequence shared by every instance, so only this instance's own entries
        (written by its one journal writer, in id order) make a safe high-water mark.
        """
        with self.read() as conn:
            row = conn.execute(
                "SELECT COALESCE(MAX(id), 0) FROM intake_journal WHERE owner = %s", (self.owner,)
            ).fetchone()
        return int(row[0])

    # -- groups -------------------------------------------------------------------------------

    def record(self, occurrence: Occurrence, render: Renderer, now: float | None = None,
               journal_trace: tuple[str, int | None] | None = None) -> GroupUpdate:
        """Count ``occurrence`` in its group (creating it if new) and store the rendered issue.

        Same contract as ``SQLiteStore.record``; safe when instances record one fingerprint at once.
        """
        journal = [journal_trace] if journal_trace is not None else []
        return self.record_many([occurrence], SingleRenderer(render), now, journal)[0]

    def record_many(self, occurrences: Sequence[Occurrence], renderer: IssueRenderer, now: float | None = None,
                    journal: Sequence[tuple[str, int | None]] = ()) -> list[GroupUpdate]:
        """Count ``occurrences`` in one transaction, each group rendered once: ``SQLiteStore.record_many``.

        Safe when instances record the same groups at once: the batch locks its groups' rows in
        fingerprint order, and an occurrence another instance counted meanwhile rolls the batch
        back and counts it again, that occurrence now as a duplicate.
        """
        try:
            return self._record_many(occurrences, renderer, now, journal)
        except _AlreadyCounted:  # another instance counted one of them meanwhile: now it is a known key
            return self._record_many(occurrences, renderer, now, journal)

    def _record_many(self, occurrences: Sequence[Occurrence], renderer: IssueRenderer, now: float | None,
                     journal: Sequence[tuple[str, int | None]]) -> list[GroupUpdate]:
        # Pipelined: three round trips per batch (key look-up + group inserts and locks + versions;
        # the claims; every other write + commit), whatever its size. Each fetch is where it waits.
        times = stamps(len(occurrences), now)
        batch = BatchTally(renderer)
        if not occurrences:  # traces whose errors were all recorded before: only their journal
            with self.transaction() as conn:
                for trace_id, up_to in journal:
                    self.journal_done(trace_id, up_to, conn)
            return []
        with self.transaction(pipelined=True) as conn:
            keys = conn.execute("SELECT key, group_id FROM occurrence_keys WHERE key = ANY(%s)",
                                (sorted({o.key for o in occurrences}),))
            firsts: dict[str, tuple[Occurrence, float]] = {}
            for occurrence, stamp in zip(occurrences, times, strict=True):
                firsts.setdefault(occurrence.fingerprint, (occurrence, stamp))
            # Every group of the batch is created if new and locked, whether or not its occurrences
            # turn out to be known (then it exists and nothing is inserted): one round trip for all.
            # The row locks are taken in one order, so instances whose batches share groups wait,
            # never deadlock (a row we have just inserted is ours already: locking it saves waiting).
            pending = []
            for fingerprint in sorted(firsts):
                occurrence, stamp = firsts[fingerprint]
                exc = occurrence.exception
                occurred = occurrence_time(exc.time_unix_nano, stamp)
                inserted = conn.execute(
                    "INSERT INTO groups (fingerprint, title, body, count, first_seen, last_seen, first_processed,"
                    " last_processed, service, exception_type, source, grouping_fields)"
                    " VALUES (%s, '', '', 1, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (fingerprint) DO NOTHING RETURNING id",
                    (fingerprint, occurred, occurred, stamp, stamp, exc.service_name, exc.type, exc.source,
                     json.dumps(occurrence.grouping_fields)),
                )
                locked = conn.execute(
                    "SELECT id, count, first_seen, last_seen, title FROM groups WHERE fingerprint = %s FOR UPDATE",
                    (fingerprint,),
                )
                pending.append((fingerprint, inserted, locked))
            versions = conn.execute(
                "SELECT v.group_id, v.first_seen, v.version FROM group_versions v JOIN groups g ON g.id = v.group_id"
                " WHERE g.fingerprint = ANY(%s)", (sorted(firsts),),
            )
            known = {str(k): int(g) for k, g in keys.fetchall()}
            tallies: dict[str, GroupTally] = {}
            for fingerprint, inserted, locked in pending:
                is_new = inserted.fetchone() is not None
                row = locked.fetchone()
                tallies[fingerprint] = GroupTally(int(row[0]), is_new, 0 if is_new else int(row[1]), float(row[2]),
                                                  float(row[3]), [], str(row[4]))
            by_id = {t.group_id: t for t in tallies.values()}
            for group_id, first_seen, version in versions.fetchall():
                by_id[int(group_id)].versions.append((float(first_seen), str(version)))
            for tally in tallies.values():
                tally.versions.sort()
            claims: list[tuple[str, int, float]] = []
            for occurrence, stamp in zip(occurrences, times, strict=True):
                exc = occurrence.exception
                if occurrence.key in known:
                    batch.duplicate(occurrence, known[occurrence.key])
                    continue
                tally = tallies[occurrence.fingerprint]
                if occurrence.key in batch.keys:
                    batch.duplicate(occurrence, tally.group_id)
                    continue
                new_version = False
                version = exc.service_version
                if version and not tally.has_version(version):
                    conn.execute("INSERT INTO group_versions (group_id, version, first_seen) VALUES (%s, %s, %s)"
                                 " ON CONFLICT DO NOTHING", (tally.group_id, version, stamp))
                    batch.add_version(tally, version, stamp)
                    new_version = True
                if exc.trace_id:
                    conn.execute(
                        "INSERT INTO group_traces (group_id, trace_id, seen) VALUES (%s, %s, %s)"
                        " ON CONFLICT (group_id, trace_id) DO UPDATE SET seen = EXCLUDED.seen",
                        (tally.group_id, exc.trace_id, stamp),
                    )
                batch.groups[occurrence.fingerprint] = tally
                batch.count(tally, occurrence, occurrence_time(exc.time_unix_nano, stamp), stamp, new_version)
                claims.append((occurrence.key, tally.group_id, stamp))
            # Another instance recording one of these very occurrences at this moment: the key's
            # unique index makes one of the two wait and then find it, so it is counted once.
            if claims:
                claimed = conn.execute(
                    "INSERT INTO occurrence_keys (key, group_id, seen)"
                    " SELECT * FROM unnest(%s::text[], %s::bigint[], %s::float8[]) ON CONFLICT DO NOTHING RETURNING key",
                    ([c[0] for c in claims], [c[1] for c in claims], [c[2] for c in claims]),
                ).fetchall()
                if len(claimed) != len(claims):
                    raise _AlreadyCounted
            if batch.crossed(256):  # now and then, not on every write
                conn.execute("DELETE FROM occurrence_keys WHERE seen < %s", (times[-1] - OCCURRENCE_KEY_SECONDS,))
            groups: dict[int, GroupRecord] = {}
            for group_id in batch.group_ids() - {t.group_id for t in batch.groups.values()}:
                loaded = _load(conn, "id = %s", (group_id,))  # only duplicates of it: as stored
                assert loaded is not None
                groups[group_id] = loaded
            written = []
            for tally in batch.groups.values():
                written.append((tally, *self._store_tally(conn, batch, tally)))
            for trace_id, up_to in journal:
                self.journal_done(trace_id, up_to, conn)
        # Fetched after the commit, which the pipeline sent with these statements: the results
        # are already here (a failed statement would have failed the block above).
        for tally, updated, traces in written:
            groups[tally.group_id] = _group(updated.fetchone(), tuple(v for _, v in tally.versions),
                                            tuple(str(t[0]) for t in traces.fetchall()))
        return batch.updates(groups)

    @staticmethod
    def _store_tally(conn: Any, batch: BatchTally, tally: GroupTally) -> tuple[Any, Any]:
        """Queue a group's numbers, history and issue after the batch; return the cursors to read it back."""
        group_id = tally.group_id
        if tally.traced:
            conn.execute(
                "DELETE FROM group_traces WHERE group_id = %s AND trace_id NOT IN"
                " (SELECT trace_id FROM group_traces WHERE group_id = %s ORDER BY seen DESC LIMIT %s)",
                (group_id, group_id, MAX_TRACE_IDS_PER_GROUP),
            )
        # Under the group's row lock: instances write one group's history one after the other.
        record_history_many(PortableConn(conn, POSTGRES), group_id, tally.history, tally.processed)
        title, body = batch.render(tally)
        updated = conn.execute(
            "UPDATE groups SET title = %s, body = %s, count = %s, first_seen = %s, last_seen = %s,"
            " last_processed = %s, source = CASE WHEN source = '' THEN %s ELSE source END WHERE id = %s"
            f" RETURNING {_GROUP_COLS}",
            (title, body, tally.count, tally.first_seen, tally.last_seen, tally.processed, tally.source, group_id),
        )
        return updated, conn.execute(_TRACES, (group_id,))

    def groups(self) -> list[GroupRecord]:
        """Every group with its body, newest activity first (three queries in one snapshot)."""
        with self.read() as conn:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            versions: dict[int, list[str]] = {}
            for group_id, version in conn.execute(
                "SELECT group_id, version FROM group_versions ORDER BY group_id, first_seen, version"
            ):
                versions.setdefault(int(group_id), []).append(str(version))
            traces: dict[int, list[str]] = {}
            for group_id, trace_id in conn.execute(
                "SELECT group_id, trace_id FROM group_traces ORDER BY group_id, seen DESC"
            ):
                traces.setdefault(int(group_id), []).append(str(trace_id))
            rows = conn.execute(f"SELECT {_GROUP_COLS} FROM groups ORDER BY last_seen DESC, id DESC").fetchall()
        return [_group(r, tuple(versions.get(int(r[0]), ())), tuple(traces.get(int(r[0]), ()))) for r in rows]

    def group_count(self) -> int:
        """How many groups there are; gives up after a second (it feeds /metrics, which must answer)."""
        with self.read(wait=_QUICK_WAIT) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM groups").fetchone()[0])

    def group(self, group_id: int) -> GroupRecord | None:
        with self.read() as conn:
            return _load(conn, "id = %s", (group_id,))

    def group_by_fingerprint(self, fingerprint: str) -> GroupRecord | None:
        with self.read() as conn:
            return _load(conn, "fingerprint = %s", (fingerprint,))

    def close(self) -> None:
        """Close the pool (idempotent); calls after it raise ``StateError``."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._pool.close()


class _AlreadyCounted(Exception):
    """Raised inside ``record``'s transaction to roll it back: the occurrence's key was taken."""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _versions(conn: Any, group_id: int) -> tuple[str, ...]:
    rows = conn.execute(
        "SELECT version FROM group_versions WHERE group_id = %s ORDER BY first_seen, version", (group_id,)
    ).fetchall()
    return tuple(str(r[0]) for r in rows)


def _load(conn: Any, where: str, args: tuple[Any, ...]) -> GroupRecord | None:
    row = conn.execute(f"SELECT {_GROUP_COLS} FROM groups WHERE {where}", args).fetchone()
    if row is None:
        return None
    group_id = int(row[0])
    traces = conn.execute(_TRACES, (group_id,)).fetchall()
    return _group(row, _versions(conn, group_id), tuple(str(t[0]) for t in traces))


def _group(row: Any, versions: tuple[str, ...], trace_ids: tuple[str, ...]) -> GroupRecord:
    return GroupRecord(
        id=int(row[0]), fingerprint=str(row[1]), title=str(row[2]), body=str(row[3]), count=int(row[4]),
        first_seen=float(row[5]), last_seen=float(row[6]), service=str(row[7]), exception_type=str(row[8]),
        source=str(row[9]), versions=versions, trace_ids=trace_ids,
        first_processed=float(row[10]), last_processed=float(row[11]),
    )
