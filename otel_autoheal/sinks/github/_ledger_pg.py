"""``PostgresLedger``: the GitHub sink's ledger in the PostgreSQL database several instances share.

The same tables and SQL as on SQLite (``_ledger_schema``, ``_ledger_unit``: the connection adapter
below turns ``?`` placeholders into psycopg's ``%s``); what sharing adds is PostgreSQL's own:
row claims with ``FOR UPDATE SKIP LOCKED``, a map row locked per unit, budgets checked under a
transaction advisory lock, and leadership held as a session advisory lock on a connection of its
own, released by the server when that connection (or the process) dies. See ``ledger`` for the
contract.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from otel_autoheal.errors import StateError
from otel_autoheal.sinks.github._ledger_schema import ADDED_COLUMNS, postgres_schema, postgres_type
from otel_autoheal.sinks.github.ledger import CLAIM_LEASE_SECONDS, GitHubLedger
from otel_autoheal.state.postgres import PostgresStore

__all__ = ["LEDGER_SCHEMA_VERSION", "PostgresLedger"]

log = logging.getLogger("otel_autoheal.sinks.github")

#: Version of the ``github_*`` tables on PostgreSQL, kept in ``github_meta`` (``schema_version``).
LEDGER_SCHEMA_VERSION = 1

#: Advisory lock keys (64-bit): creating the tables, checking a budget, leading the poll.
_SCHEMA_LOCK = 0x6168_6768_7363_6801  # "ahghsch" + 1
_BUDGET_LOCK = 0x6168_6768_6275_6402
_LEADER_LOCK = 0x6168_6768_6C65_6103
#: Seconds between checks that the leadership connection still holds the lock (or may take it).
_LEAD_CHECK = 5.0


class _Conn:
    """A psycopg connection that takes the ledger's ``?`` placeholders and Python booleans."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        values = tuple(int(v) if isinstance(v, bool) else v for v in params)
        return self._conn.execute(sql.replace("?", "%s"), values)


class PostgresLedger(GitHubLedger):
    """``GitHubLedger`` on a ``PostgresStore``; ``owner`` is the store's instance id."""

    shared = True
    _FOR_UPDATE = " FOR UPDATE"
    _SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"

    def __init__(self, store: Any, lease: float = CLAIM_LEASE_SECONDS) -> None:
        if not isinstance(store, PostgresStore):
            raise TypeError(f"PostgresLedger needs a PostgresStore, not {type(store).__name__}")
        self._leader: Any = None
        self._leading = False
        self._lead_checked = 0.0
        super().__init__(store, owner=store.owner, lease=lease)

    def _create_schema(self) -> None:
        """Create or migrate the tables once, whichever instances start together."""
        with self._tx() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
            for statement in postgres_schema():
                conn.execute(statement)
            for table, columns in ADDED_COLUMNS.items():
                for name, decl in columns.items():
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {postgres_type(decl)}")
            row = conn.execute("SELECT value FROM github_meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else 0
            if version > LEDGER_SCHEMA_VERSION:
                raise StateError(
                    f"the GitHub tables in {self.store.path} have schema version {version}, newer than this "
                    f"otel-autoheal knows ({LEDGER_SCHEMA_VERSION}): upgrade otel-autoheal")
            if version != LEDGER_SCHEMA_VERSION:
                conn.execute("INSERT INTO github_meta (key, value) VALUES ('schema_version', ?)"
                             " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(LEDGER_SCHEMA_VERSION),))

    @classmethod
    def _has_tables(cls, store: Any) -> bool:
        with store.read() as conn:
            return bool(conn.execute("SELECT to_regclass('github_issues') IS NOT NULL").fetchone()[0])

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self.store.transaction() as conn:
            yield _Conn(conn)

    @contextmanager
    def _read(self) -> Iterator[Any]:
        with self.store.read() as conn:
            yield _Conn(conn)

    def _lock_budget(self, conn: Any) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (_BUDGET_LOCK,))

    def leads(self) -> bool:
        """Hold (or try to take) the leadership lock on a connection of its own; checked every few seconds."""
        now = time.monotonic()
        if now - self._lead_checked < _LEAD_CHECK:
            return self._leading
        self._lead_checked = now
        import psycopg

        was = self._leading
        try:
            if self._leader is None or self._leader.closed:
                self._leading = False
                self._leader = psycopg.connect(self.store.url, autocommit=True, connect_timeout=5)
            if self._leading:
                self._leader.execute("SELECT 1")  # the lock lives as long as this connection
            else:
                row = self._leader.execute("SELECT pg_try_advisory_lock(%s)", (_LEADER_LOCK,)).fetchone()
                self._leading = bool(row[0])
        except psycopg.Error as exc:
            log.warning("GitHub sink: lost the connection holding the poll leadership: %s", str(exc).strip()[:200])
            self.close()
        if self._leading != was:
            log.info("GitHub sink: instance %s %s the issue poll and fix bookkeeping", self.owner,
                     "now runs" if self._leading else "no longer runs")
        return self._leading

    def close(self) -> None:
        """Close the leadership connection: the lock is released and another instance takes over."""
        leader, self._leader, self._leading = self._leader, None, False
        if leader is not None:
            try:
                leader.close()
            except Exception:  # noqa: BLE001 - closing a broken connection must not fail the caller
                log.debug("closing the leadership connection failed", exc_info=True)
