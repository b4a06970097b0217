"""``GitHubLedger``: everything the GitHub sink remembers, and the only code of the sink that speaks SQL.

It holds the outbox of pending GitHub writes, the fingerprint -> issue map, the versions seen per
group, the fixes that closed issues, the writes made (for the budgets), the labels known to
exist and a few meta values (``paused``, ``last_error``, the token's login, the poll cursor).

Contract (what a second backend, e.g. PostgreSQL, has to keep):

- **Durability.** Every GitHub write is first an outbox row, committed in the same transaction
  that counts the occurrence, then performed by the worker, then marked done: a crash at any
  point leaves work to resume, never lost work. ``attempts`` is raised *before* a write is sent:
  a row with ``attempts > 0`` may have reached GitHub.
- **Transactions.** Each ``GitHubLedger`` method is one short transaction of its own; the counts
  read for ``status()`` and ``/metrics`` (``counts``, ``issue_count``, ``fix_counts``,
  ``writes_since``) read a snapshot without waiting for the write lock. Steps that must commit
  together run in ``with ledger.unit() as u:``: every ``LedgerUnit`` method runs in that one
  transaction, committed when the block ends, rolled back when it raises. Units do not nest, and
  no ``GitHubLedger`` method may be called inside one.
- **Threads.** A ledger may be shared by threads (the pipeline's ``handle`` and the worker):
  writers take the store's write lock in turn. A unit belongs to the thread that opened it and
  is dead after its block.
- **Not found.** Lookups of one thing (``issue``, ``fix``, ``pending_item``, ``meta``...) return
  None; lists and maps come back empty; updates of a missing row change nothing, except
  ``set_issue``, which creates the map entry.
- **Errors.** The store's ``StateError``/``StateBusy`` propagate unchanged.

The SQLite tables live in the state store's file, prefixed ``github_`` (``_ledger_schema``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from otel_autoheal.sinks.github._ledger_schema import ADDED_ISSUE_COLUMNS, ITEM_COLS, SCHEMA, outbox_item
from otel_autoheal.sinks.github._ledger_unit import SQLiteUnit
from otel_autoheal.sinks.github.records import FixRow, IssueRow, OutboxItem
from otel_autoheal.state.sqlite import SQLiteStore

__all__ = ["GitHubLedger", "LedgerUnit"]

class LedgerUnit(Protocol):
    """Reads and writes that commit together (see "Transactions"); ``GitHubLedger.unit()`` hands one out."""

    # outbox rows
    def enqueue(self, kind: str, fingerprint: str, payload: dict[str, Any], not_before: float = 0.0) -> int: ...
    def merge(self, kind: str, fingerprint: str, payload: dict[str, Any]) -> None:
        """Queue ``kind`` or fold ``payload`` into the one pending (newest wins; ``reasons`` joined)."""
    def pending_item(self, kind: str, fingerprint: str) -> OutboxItem | None: ...
    def has_failed(self, kind: str, fingerprint: str) -> bool: ...
    def set_payload(self, item_id: int, payload: dict[str, Any]) -> None: ...
    # issue map
    def issue(self, fingerprint: str) -> IssueRow | None: ...
    def set_issue(self, fingerprint: str, **values: Any) -> None:
        """Create the group's map entry if missing, then set ``values``."""
    # versions, and the store's own view of the group
    def see_version(self, fingerprint: str, version: str, now: float) -> None: ...
    def versions_seen_by(self, fingerprint: str, when: float) -> list[tuple[str, float]]:
        """The group's versions first seen by ``when`` (plus ``CLOSED_AT_SLACK``)."""
    def service_versions(self, fingerprint: str) -> list[tuple[str, float]]:
        """Every version of the group's service (any group of it), with when it was first seen."""
    def group_last_seen(self, fingerprint: str) -> float | None: ...
    # fixes
    def fix(self, fingerprint: str, active_only: bool = True) -> FixRow | None: ...
    def fix_by_id(self, fix_id: int) -> FixRow | None: ...
    def fix_for_close(self, fingerprint: str, closed_at: float) -> FixRow | None: ...
    def fixes_in(self, *states: str) -> list[FixRow]: ...
    def add_fix(
        self, fingerprint: str, closed_at: float, pr_number: int | None, commit_sha: str, merged_at: float, state: str
    ) -> None:
        """Record the fix of the close at ``closed_at``; a second one for the same close is ignored."""
    def set_fix(self, fix_id: int, **values: Any) -> None: ...
    def end_fixes(self, fingerprint: str, state: str) -> None:
        """Every fix still in force for the group ends as ``state``."""


class GitHubLedger:
    """The sink's storage (see the module docstring for the contract); SQLite tables in ``store``'s file."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        with store.transaction() as conn:
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            have = {str(r[1]) for r in conn.execute("PRAGMA table_info(github_issues)")}
            for name, decl in ADDED_ISSUE_COLUMNS.items():
                if name not in have:
                    conn.execute(f"ALTER TABLE github_issues ADD COLUMN {name} {decl}")

    @classmethod
    def existing(cls, store: SQLiteStore) -> GitHubLedger | None:
        """The ledger kept in ``store``, or None when the GitHub sink never ran on it (nothing is created)."""
        with store.read() as conn:
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='github_issues'").fetchone()
        return cls(store) if found else None

    @contextmanager
    def unit(self) -> Iterator[LedgerUnit]:
        """One transaction for the block (see "Transactions" above)."""
        with self.store.transaction() as conn:
            yield SQLiteUnit(conn)

    # ----------------------------------------------------------- outbox rows

    def pending(self, limit: int = 500) -> list[OutboxItem]:
        with self.store.transaction() as conn:
            rows = conn.execute(
                f"SELECT {ITEM_COLS} FROM github_outbox WHERE state = 'pending' ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [outbox_item(r) for r in rows]

    def has_pending(self, kind: str, fingerprint: str) -> bool:
        with self.unit() as u:
            return u.pending_item(kind, fingerprint) is not None

    def begin_attempt(self, item_id: int) -> None:
        """Mark that a write of this item is about to be sent (it may reach GitHub from now on)."""
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE github_outbox SET attempts = attempts + 1, updated = ? WHERE id = ?", (time.time(), item_id)
            )

    def done(self, item: OutboxItem, note: str | None = None) -> bool:
        """Mark ``item`` done unless occurrences folded newer data into it meanwhile.

        Returns False when the payload changed while the item was being sent: it stays pending as
        a fresh write (attempts reset), so the newer data is not lost.
        """
        with self.store.transaction() as conn:
            cur = conn.execute(
                "UPDATE github_outbox SET state = 'done', last_error = ?, updated = ? WHERE id = ?"
                " AND json_remove(payload, '$.reopened') = json_remove(json(?), '$.reopened')",
                (note, time.time(), item.id, json.dumps(item.payload)),
            )
            if cur.rowcount == 1:
                return True
            conn.execute(
                "UPDATE github_outbox SET attempts = 0, payload = json_remove(payload, '$.reopened'), updated = ?"
                " WHERE id = ? AND state = 'pending'",
                (time.time(), item.id),
            )
            return False

    def fail(self, item_id: int, reason: str) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE github_outbox SET state = 'failed', last_error = ?, updated = ? WHERE id = ?",
                (reason, time.time(), item_id),
            )

    def defer(self, item_id: int, until: float, error: str | None, count_retry: bool) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE github_outbox SET not_before = ?, last_error = ?, retries = retries + ?, updated = ?"
                " WHERE id = ?",
                (until, error, 1 if count_retry else 0, time.time(), item_id),
            )

    def counts(self) -> dict[str, int]:
        """Outbox items by state; a read (no write lock), cheap enough for every scrape."""
        with self.store.read() as conn:
            rows = conn.execute("SELECT state, COUNT(*) FROM github_outbox GROUP BY state").fetchall()
        out = {"pending": 0, "failed": 0, "done": 0}
        out.update({r[0]: int(r[1]) for r in rows})
        return out

    def oldest_pending(self) -> float | None:
        with self.store.transaction() as conn:
            row = conn.execute("SELECT MIN(created) FROM github_outbox WHERE state = 'pending'").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def failures(self, limit: int = 5) -> list[dict[str, Any]]:
        with self.store.transaction() as conn:
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
        with self.store.transaction() as conn:
            return {str(r[0]) for r in conn.execute("SELECT fingerprint FROM github_issues")}

    def issue_count(self) -> int:
        """Groups filed as GitHub issues, counted without reading them."""
        with self.store.read() as conn:
            row = conn.execute("SELECT COUNT(*) FROM github_issues WHERE issue_number IS NOT NULL").fetchone()
        return int(row[0])

    def issue_numbers(self) -> dict[str, int]:
        """fingerprint -> issue number of every filed group."""
        with self.store.transaction() as conn:
            rows = conn.execute(
                "SELECT fingerprint, issue_number FROM github_issues WHERE issue_number IS NOT NULL"
            ).fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def first_filed_at(self) -> float | None:
        """When the oldest filed issue's map entry was made (None: nothing filed)."""
        with self.store.transaction() as conn:
            (oldest,) = conn.execute("SELECT MIN(created) FROM github_issues WHERE issue_number IS NOT NULL").fetchone()
        return None if oldest is None else float(oldest)

    def handoff_counts(self) -> dict[str, int]:
        with self.store.transaction() as conn:
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
        with self.store.read() as conn:
            rows = dict(conn.execute("SELECT state, COUNT(*) FROM github_fixes GROUP BY state").fetchall())
        return {
            "awaiting_deploy": int(rows.get("merged", 0)),
            "deployed": int(rows.get("deployed", 0)) + int(rows.get("verifying", 0)),
            "verified": int(rows.get("verified", 0)),
            "regressed": int(rows.get("regressed", 0)),
        }

    # ----------------------------------------------------------- writes made (budgets)

    def record_write(self, kind: str, now: float, forget_before: float) -> None:
        """Count a write of ``kind`` sent at ``now``; forget the ones older than ``forget_before``."""
        with self.store.transaction() as conn:
            conn.execute("INSERT INTO github_writes (ts, kind) VALUES (?, ?)", (now, kind))
            conn.execute("DELETE FROM github_writes WHERE ts < ?", (forget_before,))

    def write_times(self, since: float, kinds: Iterable[str] | None = None) -> list[float]:
        """When the writes after ``since`` were sent, oldest first: of ``kinds``, else all but hand-offs."""
        with self.store.transaction() as conn:
            if kinds is None:
                rows = conn.execute(
                    "SELECT ts FROM github_writes WHERE ts > ? AND kind != 'handoff' ORDER BY ts", (since,)
                )
            else:
                wanted = tuple(kinds)
                marks = ",".join("?" * len(wanted))
                rows = conn.execute(
                    f"SELECT ts FROM github_writes WHERE ts > ? AND kind IN ({marks}) ORDER BY ts", (since, *wanted)
                )
            return [float(r[0]) for r in rows]

    def writes_since(self, since: float) -> int:
        """Writes other than hand-offs sent after ``since``, counted on a read snapshot (for /metrics)."""
        with self.store.read() as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM github_writes WHERE ts > ? AND kind != 'handoff'", (since,)
            ).fetchone()
        return int(row[0])

    # ----------------------------------------------------------- labels and meta

    def label_known(self, name: str) -> bool:
        with self.store.transaction() as conn:
            return conn.execute("SELECT 1 FROM github_labels WHERE name = ?", (name,)).fetchone() is not None

    def remember_label(self, name: str) -> None:
        with self.store.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO github_labels (name) VALUES (?)", (name,))

    def meta(self, key: str) -> str | None:
        with self.store.transaction() as conn:
            row = conn.execute("SELECT value FROM github_meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.store.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO github_meta (key, value) VALUES (?, ?)", (key, value))
