"""``LedgerUnit``: the ledger's reads and writes that commit together (one transaction), and its SQL.

Private to ``ledger`` (see its docstring for the contract). ``SQLUnit`` speaks the SQL both
backends accept (``?`` placeholders; the PostgreSQL ledger's connection adapter turns them into
``%s``), so SQLite and PostgreSQL share one implementation.
"""

from __future__ import annotations

import json
import time
from typing import Any, Protocol

from otel_autoheal.sinks.github._ledger_schema import FIX_COLS, ISSUE_COLS, ITEM_COLS, fix_row, issue_row, outbox_item
from otel_autoheal.sinks.github.records import ACTIVE_FIX_STATES, CLOSED_AT_SLACK, FixRow, IssueRow, OutboxItem

__all__ = ["LedgerUnit", "SQLUnit"]

_ACTIVE = ",".join("?" * len(ACTIVE_FIX_STATES))


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
    # the page's reads (``ui/_fixway``)
    def known_fingerprints(self) -> set[str]: ...
    def change_mark(self) -> float:
        """Moves with every write, issue state read and fix noticed (0: none yet)."""
    def issue_created(self, fingerprint: str) -> float | None: ...
    def outbox_history(self, fingerprint: str) -> list[tuple[str, str, float, str]]:
        """The group's outbox items, oldest first: kind, state, updated, last error."""
    def fixes_of(self, fingerprint: str) -> list[FixRow]:
        """Every fix recorded for the group, oldest first."""


class SQLUnit:
    """``LedgerUnit`` over the connection of one open store transaction.

    ``lock_rows`` (PostgreSQL): ``set_issue`` also locks the group's map row until the unit ends,
    so units of several instances deciding about one group run one after the other (SQLite's
    write transactions are serial already).
    """

    def __init__(self, conn: Any, lock_rows: bool = False) -> None:
        self._conn = conn
        self._lock_rows = lock_rows

    # ----------------------------------------------------------- outbox rows

    def enqueue(self, kind: str, fingerprint: str, payload: dict[str, Any], not_before: float = 0.0) -> int:
        now = time.time()
        row = self._conn.execute(
            "INSERT INTO github_outbox (kind, fingerprint, payload, not_before, created, updated)"
            " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (kind, fingerprint, json.dumps(payload), not_before, now, now),
        ).fetchone()
        return int(row[0])

    def merge(self, kind: str, fingerprint: str, payload: dict[str, Any]) -> None:
        """Queue ``kind`` for ``fingerprint`` or fold ``payload`` into the one already pending (newest
        wins; ``reasons`` lists are joined)."""
        item = self.pending_item(kind, fingerprint)
        if item is None:
            self.enqueue(kind, fingerprint, payload)
            return
        merged = {**item.payload, **payload}
        if "reasons" in payload or "reasons" in item.payload:
            reasons = list(item.payload.get("reasons", []))
            reasons += [r for r in payload.get("reasons", []) if r not in reasons]
            merged["reasons"] = reasons
        self.set_payload(item.id, merged)

    def pending_item(self, kind: str, fingerprint: str) -> OutboxItem | None:
        row = self._conn.execute(
            f"SELECT {ITEM_COLS} FROM github_outbox"
            " WHERE state = 'pending' AND kind = ? AND fingerprint = ? ORDER BY id LIMIT 1",
            (kind, fingerprint),
        ).fetchone()
        return outbox_item(row) if row else None

    def has_failed(self, kind: str, fingerprint: str) -> bool:
        """Whether a ``kind`` item of the group was given up (a create is then never queued again)."""
        row = self._conn.execute(
            "SELECT 1 FROM github_outbox WHERE kind = ? AND fingerprint = ? AND state = 'failed'", (kind, fingerprint)
        ).fetchone()
        return row is not None

    def set_payload(self, item_id: int, payload: dict[str, Any]) -> None:
        self._conn.execute(
            "UPDATE github_outbox SET payload = ?, updated = ? WHERE id = ?",
            (json.dumps(payload), time.time(), item_id),
        )

    # ----------------------------------------------------------- issue map

    def issue(self, fingerprint: str) -> IssueRow | None:
        row = self._conn.execute(f"SELECT {ISSUE_COLS} FROM github_issues WHERE fingerprint = ?", (fingerprint,))
        found = row.fetchone()
        return issue_row(found) if found else None

    def set_issue(self, fingerprint: str, **values: Any) -> None:
        """Create the group's map entry if missing, then set ``values`` (column = value)."""
        self._conn.execute(
            "INSERT INTO github_issues (fingerprint, created) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (fingerprint, time.time()),
        )
        if self._lock_rows:
            self._conn.execute("SELECT 1 FROM github_issues WHERE fingerprint = ? FOR UPDATE", (fingerprint,))
        if values:
            cols = ", ".join(f"{k} = ?" for k in values)
            self._conn.execute(
                f"UPDATE github_issues SET {cols} WHERE fingerprint = ?", (*values.values(), fingerprint)
            )

    # ----------------------------------------------------------- versions

    def see_version(self, fingerprint: str, version: str, now: float) -> None:
        self._conn.execute(
            "INSERT INTO github_versions (fingerprint, version, first_seen, last_seen) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (fingerprint, version) DO UPDATE SET last_seen = excluded.last_seen",
            (fingerprint, version, now, now),
        )

    def versions_seen_by(self, fingerprint: str, when: float) -> list[tuple[str, float]]:
        """The group's versions first seen by ``when`` (plus ``CLOSED_AT_SLACK``), with when."""
        rows = self._conn.execute(
            "SELECT version, first_seen FROM github_versions WHERE fingerprint = ? AND first_seen <= ?",
            (fingerprint, when + CLOSED_AT_SLACK),
        )
        return [(str(v), float(t)) for v, t in rows]

    def service_versions(self, fingerprint: str) -> list[tuple[str, float]]:
        """Every ``service.version`` of the group's service (any group of it), with when it was first seen."""
        rows = self._conn.execute(
            "SELECT gv.version, MIN(gv.first_seen) FROM group_versions gv JOIN groups g ON g.id = gv.group_id"
            " WHERE g.service = (SELECT service FROM groups WHERE fingerprint = ?)"
            " GROUP BY gv.version ORDER BY 2, 1",
            (fingerprint,),
        )
        return [(str(v), float(t)) for v, t in rows]

    def group_last_seen(self, fingerprint: str) -> float | None:
        """When the store last saw the group (None: no such group)."""
        row = self._conn.execute("SELECT last_seen FROM groups WHERE fingerprint = ?", (fingerprint,)).fetchone()
        return float(row[0]) if row else None

    # ----------------------------------------------------------- fixes

    def fix(self, fingerprint: str, active_only: bool = True) -> FixRow | None:
        """The newest fix recorded for the group (only one still in force with ``active_only``)."""
        where = f" AND state IN ({_ACTIVE})" if active_only else ""
        row = self._conn.execute(
            f"SELECT {FIX_COLS} FROM github_fixes WHERE fingerprint = ?{where} ORDER BY id DESC LIMIT 1",
            (fingerprint, *(ACTIVE_FIX_STATES if active_only else ())),
        ).fetchone()
        return fix_row(row) if row else None

    def fix_by_id(self, fix_id: int) -> FixRow | None:
        row = self._conn.execute(f"SELECT {FIX_COLS} FROM github_fixes WHERE id = ?", (fix_id,)).fetchone()
        return fix_row(row) if row else None

    def fix_for_close(self, fingerprint: str, closed_at: float) -> FixRow | None:
        """The fix recorded for the close at ``closed_at`` (within ``CLOSED_AT_SLACK``)."""
        row = self._conn.execute(
            f"SELECT {FIX_COLS} FROM github_fixes WHERE fingerprint = ? AND abs(closed_at - ?) <= ?",
            (fingerprint, closed_at, CLOSED_AT_SLACK),
        ).fetchone()
        return fix_row(row) if row else None

    def fixes_in(self, *states: str) -> list[FixRow]:
        rows = self._conn.execute(
            f"SELECT {FIX_COLS} FROM github_fixes WHERE state IN ({','.join('?' * len(states))}) ORDER BY id",
            states,
        ).fetchall()
        return [fix_row(r) for r in rows]

    def add_fix(
        self, fingerprint: str, closed_at: float, pr_number: int | None, commit_sha: str, merged_at: float, state: str
    ) -> None:
        """Record the fix of the close at ``closed_at``; a second one for the same close is ignored."""
        self._conn.execute(
            "INSERT INTO github_fixes (fingerprint, closed_at, pr_number, commit_sha, merged_at, state,"
            " updated) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (fingerprint, closed_at, pr_number, commit_sha, merged_at, state, time.time()),
        )

    def set_fix(self, fix_id: int, **values: Any) -> None:
        cols = ", ".join(f"{k} = ?" for k in values)
        self._conn.execute(
            f"UPDATE github_fixes SET {cols}, updated = ? WHERE id = ?", (*values.values(), time.time(), fix_id)
        )

    def end_fixes(self, fingerprint: str, state: str) -> None:
        """The issue is open again: every fix still in force for it ends as ``state``."""
        self._conn.execute(
            f"UPDATE github_fixes SET state = ?, updated = ? WHERE fingerprint = ? AND state IN ({_ACTIVE})",
            (state, time.time(), fingerprint, *ACTIVE_FIX_STATES),
        )

    # ----------------------------------------------------------- the page's reads (ui/_fixway)

    def known_fingerprints(self) -> set[str]:
        """Every group with a map entry: only those can be anywhere but "local only"."""
        return {str(r[0]) for r in self._conn.execute("SELECT fingerprint FROM github_issues")}

    def change_mark(self) -> float:
        """Moves with every write, issue state read and fix noticed (0: none yet)."""
        marks = [self._conn.execute(sql).fetchone()[0] for sql in (
            "SELECT MAX(updated) FROM github_outbox", "SELECT MAX(updated) FROM github_fixes",
            "SELECT MAX(state_checked_at) FROM github_issues")]
        return max(float(m or 0) for m in marks)

    def issue_created(self, fingerprint: str) -> float | None:
        """When the group's map entry was made (None: no entry)."""
        row = self._conn.execute("SELECT created FROM github_issues WHERE fingerprint = ?", (fingerprint,)).fetchone()
        return float(row[0]) if row else None

    def outbox_history(self, fingerprint: str) -> list[tuple[str, str, float, str]]:
        """The group's outbox items, oldest first: kind, state, updated, last error ("" if none)."""
        rows = self._conn.execute(
            "SELECT kind, state, updated, last_error FROM github_outbox WHERE fingerprint = ? ORDER BY id",
            (fingerprint,),
        )
        return [(str(kind), str(state), float(updated), str(error or "")) for kind, state, updated, error in rows]

    def fixes_of(self, fingerprint: str) -> list[FixRow]:
        """Every fix recorded for the group, oldest first."""
        rows = self._conn.execute(
            f"SELECT {FIX_COLS} FROM github_fixes WHERE fingerprint = ? ORDER BY id", (fingerprint,)
        ).fetchall()
        return [fix_row(r) for r in rows]
