"""``GitHubLedger``: everything the GitHub sink remembers, and the only code of the sink that speaks SQL.

It holds the outbox of pending GitHub writes, the fingerprint -> issue map, the versions seen per
group, the fixes that closed issues, the writes made (for the budgets), the labels known to
exist and a few meta values (``paused``, ``last_error``, the token's login, the poll cursor).
``ledger_for(store)`` picks the implementation: ``GitHubLedger`` on SQLite, ``PostgresLedger``
(``_ledger_pg``) on PostgreSQL, where several instances share the tables.

Contract (both implementations; ``tests/github/test_ledger.py`` runs one suite against both):

- **Durability.** Every GitHub write is first an outbox row, committed in the same transaction
  that counts the occurrence, then performed by the worker, then marked done: a crash at any
  point leaves work to resume, never lost work. ``attempts`` is raised *before* a write is sent:
  a row with ``attempts > 0`` may have reached GitHub.
- **Transactions.** Each ``GitHubLedger`` method is one short transaction of its own; the counts
  read for ``status()`` and ``/metrics`` (``counts``, ``issue_count``, ``fix_counts``,
  ``writes_since``) read a snapshot without waiting for the write lock. Steps that must commit
  together run in ``with ledger.unit() as u:``: every ``LedgerUnit`` method runs in that one
  transaction, committed when the block ends, rolled back when it raises. Units do not nest, and
  no ``GitHubLedger`` method may be called inside one. On PostgreSQL ``set_issue`` locks the
  group's map row until the unit ends: units about one group run one after the other.
- **Claims.** An outbox item is worked by one instance (``owner``) at a time: ``claim`` takes it
  (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) for ``lease`` seconds, ``renew_claims`` extends the
  holder's leases while it lives, ``done``/``fail``/``defer`` release it; once a lease ran out
  (the holder died) anyone may claim it; ``pending`` leaves out items others hold;
  ``begin_attempt`` raises ``ClaimLost`` when the item is no longer ours, so no write is sent
  twice. On SQLite the owner is always ``local`` (a restarted process takes its items back).
- **Budgets.** ``reserve_write`` checks a budget and counts the write in one transaction under a
  lock all instances share: two never both get the last slot.
- **Leadership.** ``leads()`` is true on one instance at a time (on PostgreSQL the holder of a
  session advisory lock, freed when its connection dies): the poll and the fix books run there.
- **Threads.** A ledger may be shared by threads (the pipeline's ``handle`` and the worker):
  writers take the store's write lock in turn. A unit belongs to the thread that opened it and
  is dead after its block.
- **Not found.** Lookups of one thing (``issue``, ``fix``, ``pending_item``, ``meta``...) return
  None; lists and maps come back empty; updates of a missing row change nothing, except
  ``set_issue``, which creates the map entry.
- **Errors.** The store's ``StateError``/``StateBusy`` propagate unchanged.

The tables live in the state store's database, prefixed ``github_`` (``_ledger_schema``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from otel_autoheal.sinks.github._ledger_schema import ADDED_COLUMNS, ITEM_COLS, SCHEMA, outbox_item
from otel_autoheal.sinks.github._ledger_unit import LedgerUnit, SQLUnit
from otel_autoheal.sinks.github._ledger_writes import WriteLog
from otel_autoheal.sinks.github.records import FixRow, IssueRow, OutboxItem

if TYPE_CHECKING:
    from otel_autoheal.state import Store

__all__ = ["CLAIM_LEASE_SECONDS", "ClaimLost", "GitHubLedger", "LedgerUnit", "existing_ledger", "ledger_for"]

#: Seconds an outbox claim lasts unless its holder renews it (default of ``claim_lease``).
CLAIM_LEASE_SECONDS = 60.0
#: The owner of every claim on SQLite (one process; a restarted one takes its items back).
LOCAL_OWNER = "local"


class ClaimLost(Exception):
    """The outbox item is no longer this instance's (its lease ran out and another took it): leave it."""


def _kind(store: Store) -> type[GitHubLedger]:
    from otel_autoheal.state.sqlite import SQLiteStore

    if isinstance(store, SQLiteStore):
        return GitHubLedger
    from otel_autoheal.sinks.github._ledger_pg import PostgresLedger

    return PostgresLedger


def ledger_for(store: Store, lease: float = CLAIM_LEASE_SECONDS) -> GitHubLedger:
    """The ledger kept in ``store`` (created if missing), of the implementation its backend needs."""
    return _kind(store)(store, lease=lease)


def existing_ledger(store: Store) -> GitHubLedger | None:
    """The ledger kept in ``store``, or None when the GitHub sink never ran on it (nothing is created)."""
    return _kind(store).existing(store)


class GitHubLedger(WriteLog):
    """The sink's storage (see the module docstring for the contract); SQLite tables in ``store``'s file."""

    #: Whether other instances share the tables (their claims and leadership matter).
    shared = False
    #: Row locks for read-then-write steps (none on SQLite, whose write transactions are serial).
    _FOR_UPDATE = ""
    _SKIP_LOCKED = ""

    def __init__(self, store: Any, owner: str = LOCAL_OWNER, lease: float = CLAIM_LEASE_SECONDS) -> None:
        self.store = store
        self.owner = owner
        self.lease = lease
        self._create_schema()

    def _create_schema(self) -> None:
        with self.store.transaction() as conn:
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            for table, columns in ADDED_COLUMNS.items():
                have = {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}
                for name, decl in columns.items():
                    if name not in have:
                        conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")

    @classmethod
    def _has_tables(cls, store: Any) -> bool:
        with store.read() as conn:
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='github_issues'").fetchone()
        return found is not None

    @classmethod
    def existing(cls, store: Any) -> GitHubLedger | None:
        """The ledger kept in ``store``, or None when the GitHub sink never ran on it (nothing is created)."""
        return cls(store) if cls._has_tables(store) else None

    def _tx(self) -> AbstractContextManager[Any]:
        """A write transaction's connection, speaking ``?`` placeholders."""
        return self.store.transaction()  # type: ignore[no-any-return]

    def _read(self) -> AbstractContextManager[Any]:
        """A read snapshot's connection, speaking ``?`` placeholders."""
        return self.store.read()  # type: ignore[no-any-return]

    @contextmanager
    def unit(self) -> Iterator[LedgerUnit]:
        """One transaction for the block (see "Transactions" above)."""
        with self._tx() as conn:
            yield SQLUnit(conn, lock_rows=self.shared)

    def leads(self) -> bool:
        """Whether this instance runs the once-per-deployment duties now (always, on SQLite)."""
        return True

    def close(self) -> None:
        """Let go of what the ledger holds beyond the store (the PostgreSQL leadership connection)."""

    # ----------------------------------------------------------- outbox rows

    def pending(self, limit: int = 500) -> list[OutboxItem]:
        """Pending items, oldest first, but those another live instance holds."""
        with self._tx() as conn:
            rows = conn.execute(
                f"SELECT {ITEM_COLS} FROM github_outbox WHERE state = 'pending'"
                " AND (claimed_by IS NULL OR claimed_by = ? OR lease_until < ?) ORDER BY id LIMIT ?",
                (self.owner, time.time(), limit),
            ).fetchall()
        return [outbox_item(r) for r in rows]

    def has_pending(self, kind: str, fingerprint: str) -> bool:
        with self.unit() as u:
            return u.pending_item(kind, fingerprint) is not None

    def claim(self, item_id: int) -> OutboxItem | None:
        """Take the pending item for this instance (see "Claims"); its current values, or None when
        it is no longer pending or another instance holds it."""
        now = time.time()
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT {ITEM_COLS} FROM github_outbox WHERE id = ? AND state = 'pending'"
                f" AND (claimed_by IS NULL OR claimed_by = ? OR lease_until < ?){self._SKIP_LOCKED}",
                (item_id, self.owner, now),
            ).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE github_outbox SET claimed_by = ?, lease_until = ? WHERE id = ?",
                         (self.owner, now + self.lease, item_id))
        return outbox_item(row)

    def renew_claims(self) -> int:
        """Extend the lease of every pending item this instance holds; how many there are."""
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE github_outbox SET lease_until = ? WHERE claimed_by = ? AND state = 'pending'",
                (time.time() + self.lease, self.owner),
            )
            return int(cur.rowcount)

    def begin_attempt(self, item_id: int) -> None:
        """Mark that a write of this item is about to be sent (it may reach GitHub from now on).

        Raises ``ClaimLost`` when the item is no longer this instance's: nothing may be sent then.
        """
        now = time.time()
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE github_outbox SET attempts = attempts + 1, updated = ?, lease_until = ?"
                " WHERE id = ? AND claimed_by = ?",
                (now, now + self.lease, item_id, self.owner),
            )
            if cur.rowcount != 1:
                raise ClaimLost(f"outbox item {item_id} is held by another instance now")

    def done(self, item: OutboxItem, note: str | None = None) -> bool:
        """Mark ``item`` done unless occurrences folded newer data into it meanwhile.

        Returns False when the payload changed while the item was being sent: it stays pending as
        a fresh write (attempts reset), so the newer data is not lost.
        """
        now = time.time()
        with self._tx() as conn:
            row = conn.execute(f"SELECT payload FROM github_outbox WHERE id = ?{self._FOR_UPDATE}",
                               (item.id,)).fetchone()
            if row is None:
                return False
            stored = json.loads(row[0])
            stored.pop("reopened", None)
            if stored == {k: v for k, v in item.payload.items() if k != "reopened"}:
                conn.execute("UPDATE github_outbox SET state = 'done', last_error = ?, updated = ?, claimed_by = NULL,"
                             " lease_until = 0 WHERE id = ?", (note, now, item.id))
                return True
            conn.execute(
                "UPDATE github_outbox SET attempts = 0, payload = ?, updated = ?, claimed_by = NULL, lease_until = 0"
                " WHERE id = ? AND state = 'pending'",
                (json.dumps(stored), now, item.id),
            )
            return False

    def fail(self, item_id: int, reason: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE github_outbox SET state = 'failed', last_error = ?, updated = ?, claimed_by = NULL,"
                " lease_until = 0 WHERE id = ?",
                (reason, time.time(), item_id),
            )

    def defer(self, item_id: int, until: float, error: str | None, count_retry: bool) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE github_outbox SET not_before = ?, last_error = ?, retries = retries + ?, updated = ?,"
                " claimed_by = NULL, lease_until = 0 WHERE id = ?",
                (until, error, 1 if count_retry else 0, time.time(), item_id),
            )

    def counts(self) -> dict[str, int]:
        """Outbox items by state; a read (no write lock), cheap enough for every scrape."""
        with self._read() as conn:
            rows = conn.execute("SELECT state, COUNT(*) FROM github_outbox GROUP BY state").fetchall()
        out = {"pending": 0, "failed": 0, "done": 0}
        out.update({r[0]: int(r[1]) for r in rows})
        return out

    def oldest_pending(self) -> float | None:
        with self._tx() as conn:
            row = conn.execute("SELECT MIN(created) FROM github_outbox WHERE state = 'pending'").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def failures(self, limit: int = 5) -> list[dict[str, Any]]:
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT id, kind, fingerprint, last_error FROM github_outbox WHERE state = 'failed'"
                " ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [{"id": r[0], "kind": r[1], "fingerprint": r[2], "reason": r[3]} for r in rows]

    # ----------------------------------------------------------- issue map

    def get_issue(self, fingerprint: str) -> IssueRow | None:
        with self.unit() as u:
            return u.issue(fingerprint)

    def update_issue(self, fingerprint: str, **values: Any) -> None:
        with self.unit() as u:
            u.set_issue(fingerprint, **values)

    def known_fingerprints(self) -> set[str]:
        """Every group the map has an entry for, filed or not."""
        with self.unit() as u:
            return u.known_fingerprints()

    def issue_count(self) -> int:
        """Groups filed as GitHub issues, counted without reading them."""
        with self._read() as conn:
            row = conn.execute("SELECT COUNT(*) FROM github_issues WHERE issue_number IS NOT NULL").fetchone()
        return int(row[0])

    def issue_numbers(self) -> dict[str, int]:
        """fingerprint -> issue number of every filed group."""
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT fingerprint, issue_number FROM github_issues WHERE issue_number IS NOT NULL"
            ).fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def first_filed_at(self) -> float | None:
        """When the oldest filed issue's map entry was made (None: nothing filed)."""
        with self._tx() as conn:
            (oldest,) = conn.execute("SELECT MIN(created) FROM github_issues WHERE issue_number IS NOT NULL").fetchone()
        return None if oldest is None else float(oldest)

    def handoff_counts(self) -> dict[str, int]:
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT handoff, COUNT(*) FROM github_issues WHERE handoff != '' GROUP BY handoff"
            ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    # ----------------------------------------------------------- fixes

    def fix(self, fingerprint: str, active_only: bool = True) -> FixRow | None:
        """The newest fix recorded for the group (only one still in force with ``active_only``)."""
        with self.unit() as u:
            return u.fix(fingerprint, active_only)

    def fix_counts(self) -> dict[str, int]:
        """Fixes by outcome, for status: awaiting deploy, deployed (watched), verified, regressed."""
        with self._read() as conn:
            rows = dict(conn.execute("SELECT state, COUNT(*) FROM github_fixes GROUP BY state").fetchall())
        return {
            "awaiting_deploy": int(rows.get("merged", 0)),
            "deployed": int(rows.get("deployed", 0)) + int(rows.get("verifying", 0)),
            "verified": int(rows.get("verified", 0)),
            "regressed": int(rows.get("regressed", 0)),
        }

    # ----------------------------------------------------------- labels and meta

    def label_known(self, name: str) -> bool:
        with self._tx() as conn:
            return conn.execute("SELECT 1 FROM github_labels WHERE name = ?", (name,)).fetchone() is not None

    def remember_label(self, name: str) -> None:
        with self._tx() as conn:
            conn.execute("INSERT INTO github_labels (name) VALUES (?) ON CONFLICT DO NOTHING", (name,))

    def meta(self, key: str) -> str | None:
        with self._tx() as conn:
            row = conn.execute("SELECT value FROM github_meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as conn:
            conn.execute("INSERT INTO github_meta (key, value) VALUES (?, ?)"
                         " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))
