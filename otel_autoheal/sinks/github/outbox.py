"""The GitHub sink's durable state: the outbox of pending writes and the fingerprint -> issue map.

All tables live in the state store's SQLite file, prefixed ``github_``. Every GitHub write is
first an outbox row (committed in the same transaction that counts the occurrence), then
performed by the worker, then marked done, so a crash at any point leaves work to resume, never
lost work. ``attempts`` is raised *before* a write is sent: a row with ``attempts > 0`` may have
reached GitHub, and the worker looks for its result before repeating it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from otel_autoheal.state.sqlite import SQLiteStore

__all__ = ["ACTIVE_FIX_STATES", "CLOSED_AT_SLACK", "FixRow", "IssueRow", "Outbox", "OutboxItem"]

#: GitHub reports ``closed_at`` in whole seconds: a version first seen up to this long after the
#: reported close counts as seen before it.
CLOSED_AT_SLACK = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS github_outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    payload     TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    retries     INTEGER NOT NULL DEFAULT 0,
    not_before  REAL NOT NULL DEFAULT 0,
    last_error  TEXT,
    created     REAL NOT NULL,
    updated     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS github_outbox_pending ON github_outbox (state, id);
CREATE TABLE IF NOT EXISTS github_issues (
    fingerprint        TEXT PRIMARY KEY,
    issue_number       INTEGER,
    source             TEXT NOT NULL DEFAULT '',
    count              INTEGER NOT NULL DEFAULT 0,
    newest_version     TEXT NOT NULL DEFAULT '',
    state              TEXT NOT NULL DEFAULT 'open',
    state_reason       TEXT NOT NULL DEFAULT '',
    closed_at          REAL,
    closed_version     TEXT NOT NULL DEFAULT '',
    state_checked_at   REAL NOT NULL DEFAULT 0,
    last_comment_at    REAL NOT NULL DEFAULT 0,
    milestone          INTEGER NOT NULL DEFAULT 0,
    has_in_app         INTEGER NOT NULL DEFAULT 0,
    handoff            TEXT NOT NULL DEFAULT '',
    created            REAL NOT NULL,
    trusted            INTEGER,
    provenance         TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS github_versions (
    fingerprint TEXT NOT NULL,
    version     TEXT NOT NULL,
    first_seen  REAL NOT NULL,
    last_seen   REAL NOT NULL,
    PRIMARY KEY (fingerprint, version)
);
CREATE TABLE IF NOT EXISTS github_writes (
    ts   REAL NOT NULL,
    kind TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS github_writes_ts ON github_writes (ts);
CREATE TABLE IF NOT EXISTS github_labels (
    name TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS github_fixes (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint       TEXT NOT NULL,
    closed_at         REAL NOT NULL,
    pr_number         INTEGER,
    commit_sha        TEXT NOT NULL DEFAULT '',
    merged_at         REAL NOT NULL,
    base_version      TEXT NOT NULL DEFAULT '',
    fix_version       TEXT NOT NULL DEFAULT '',
    deployed_at       REAL,
    state             TEXT NOT NULL,
    stale             INTEGER NOT NULL DEFAULT 0,
    regressed_version TEXT NOT NULL DEFAULT '',
    updated           REAL NOT NULL,
    UNIQUE (fingerprint, closed_at)
);
CREATE INDEX IF NOT EXISTS github_fixes_state ON github_fixes (state);
CREATE TABLE IF NOT EXISTS github_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class OutboxItem:
    """One pending GitHub write (or read that may lead to one)."""

    id: int
    kind: str  # create | comment | check | reopen | handoff | verify | data
    fingerprint: str
    payload: dict[str, Any]
    attempts: int
    retries: int
    not_before: float
    created: float


@dataclass(frozen=True)
class IssueRow:
    """What the sink knows about one group's GitHub issue."""

    fingerprint: str
    issue_number: int | None
    source: str
    count: int
    newest_version: str
    state: str
    state_reason: str
    closed_at: float | None
    closed_version: str
    state_checked_at: float
    last_comment_at: float
    milestone: int
    has_in_app: bool
    handoff: str
    #: The service's verdict on where the group's data came from (None: not known yet). Once an
    #: occurrence from an untrusted origin joins the group it stays untrusted.
    trusted: bool | None = None
    #: What the verdict rests on: ``receiver`` (the ingest path said so) or ``attribute``
    #: (only the sender's ``autoheal.source``; see ``handoff.provenance``).
    provenance: str = ""

    @property
    def muted(self) -> bool:
        return self.state == "closed" and self.state_reason == "not_planned"


#: Columns added after the first release, created on databases that predate them.
_ADDED_ISSUE_COLUMNS = {"trusted": "INTEGER", "provenance": "TEXT NOT NULL DEFAULT ''"}

#: Fix states while the issue stays closed by that fix: ``merged`` (no version carrying it seen
#: yet), ``deployed`` (watching for silence), ``verifying`` (closing comment queued), ``verified``.
#: A fix ends as ``regressed`` (we reopened the issue) or ``reopened`` (someone else did).
ACTIVE_FIX_STATES = ("merged", "deployed", "verifying", "verified")


@dataclass(frozen=True)
class FixRow:
    """The change that closed an issue: a merged PR (or a commit) and the version that carries it."""

    id: int
    fingerprint: str
    closed_at: float
    pr_number: int | None
    commit_sha: str
    merged_at: float
    base_version: str
    fix_version: str
    deployed_at: float | None
    state: str
    stale: int
    regressed_version: str


_FIX_COLS = (
    "id, fingerprint, closed_at, pr_number, commit_sha, merged_at, base_version, fix_version, deployed_at,"
    " state, stale, regressed_version"
)

_ISSUE_COLS = (
    "fingerprint, issue_number, source, count, newest_version, state, state_reason, closed_at,"
    " closed_version, state_checked_at, last_comment_at, milestone, has_in_app, handoff, trusted, provenance"
)


class Outbox:
    """Thin typed access to the ``github_*`` tables; every method is one short transaction."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        with store.transaction() as conn:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            have = {str(r[1]) for r in conn.execute("PRAGMA table_info(github_issues)")}
            for name, decl in _ADDED_ISSUE_COLUMNS.items():
                if name not in have:
                    conn.execute(f"ALTER TABLE github_issues ADD COLUMN {name} {decl}")

    # ----------------------------------------------------------- outbox rows

    @staticmethod
    def enqueue(
        conn: sqlite3.Connection, kind: str, fingerprint: str, payload: dict[str, Any], not_before: float = 0.0
    ) -> int:
        now = time.time()
        cur = conn.execute(
            "INSERT INTO github_outbox (kind, fingerprint, payload, not_before, created, updated)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (kind, fingerprint, json.dumps(payload), not_before, now, now),
        )
        return int(cur.lastrowid or 0)

    @staticmethod
    def pending_item(conn: sqlite3.Connection, kind: str, fingerprint: str) -> OutboxItem | None:
        row = conn.execute(
            "SELECT id, kind, fingerprint, payload, attempts, retries, not_before, created FROM github_outbox"
            " WHERE state = 'pending' AND kind = ? AND fingerprint = ? ORDER BY id LIMIT 1",
            (kind, fingerprint),
        ).fetchone()
        return _item(row) if row else None

    @staticmethod
    def set_payload(conn: sqlite3.Connection, item_id: int, payload: dict[str, Any]) -> None:
        conn.execute(
            "UPDATE github_outbox SET payload = ?, updated = ? WHERE id = ?", (json.dumps(payload), time.time(), item_id)
        )

    def pending(self, limit: int = 500) -> list[OutboxItem]:
        with self.store.transaction() as conn:
            rows = conn.execute(
                "SELECT id, kind, fingerprint, payload, attempts, retries, not_before, created FROM github_outbox"
                " WHERE state = 'pending' ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        return [_item(r) for r in rows]

    def has_pending(self, kind: str, fingerprint: str) -> bool:
        with self.store.transaction() as conn:
            return self.pending_item(conn, kind, fingerprint) is not None

    def has_failed(self, kind: str, fingerprint: str) -> bool:
        with self.store.transaction() as conn:
            return (
                conn.execute(
                    "SELECT 1 FROM github_outbox WHERE state = 'failed' AND kind = ? AND fingerprint = ?",
                    (kind, fingerprint),
                ).fetchone()
                is not None
            )

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

    @staticmethod
    def issue(conn: sqlite3.Connection, fingerprint: str) -> IssueRow | None:
        row = conn.execute(f"SELECT {_ISSUE_COLS} FROM github_issues WHERE fingerprint = ?", (fingerprint,)).fetchone()
        if row is None:
            return None
        return IssueRow(
            fingerprint=row[0],
            issue_number=row[1],
            source=row[2],
            count=row[3],
            newest_version=row[4],
            state=row[5],
            state_reason=row[6],
            closed_at=row[7],
            closed_version=row[8],
            state_checked_at=row[9],
            last_comment_at=row[10],
            milestone=row[11],
            has_in_app=bool(row[12]),
            handoff=row[13],
            trusted=None if row[14] is None else bool(row[14]),
            provenance=str(row[15] or ""),
        )

    def get_issue(self, fingerprint: str) -> IssueRow | None:
        with self.store.transaction() as conn:
            return self.issue(conn, fingerprint)

    def update_issue(self, fingerprint: str, **values: Any) -> None:
        with self.store.transaction() as conn:
            self.set_issue(conn, fingerprint, **values)

    @staticmethod
    def set_issue(conn: sqlite3.Connection, fingerprint: str, **values: Any) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO github_issues (fingerprint, created) VALUES (?, ?)", (fingerprint, time.time())
        )
        if values:
            cols = ", ".join(f"{k} = ?" for k in values)
            conn.execute(f"UPDATE github_issues SET {cols} WHERE fingerprint = ?", (*values.values(), fingerprint))

    def issue_count(self) -> int:
        """Groups filed as GitHub issues, counted without reading them."""
        with self.store.read() as conn:
            row = conn.execute("SELECT COUNT(*) FROM github_issues WHERE issue_number IS NOT NULL").fetchone()
        return int(row[0])

    def issue_numbers(self) -> dict[str, int]:
        with self.store.transaction() as conn:
            rows = conn.execute(
                "SELECT fingerprint, issue_number FROM github_issues WHERE issue_number IS NOT NULL"
            ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def handoff_counts(self) -> dict[str, int]:
        with self.store.transaction() as conn:
            rows = conn.execute(
                "SELECT handoff, COUNT(*) FROM github_issues WHERE handoff != '' GROUP BY handoff"
            ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    # ----------------------------------------------------------- versions

    @staticmethod
    def see_version(conn: sqlite3.Connection, fingerprint: str, version: str, now: float) -> None:
        conn.execute(
            "INSERT INTO github_versions (fingerprint, version, first_seen, last_seen) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (fingerprint, version) DO UPDATE SET last_seen = excluded.last_seen",
            (fingerprint, version, now, now),
        )

    def versions_before(self, fingerprint: str, when: float) -> list[tuple[str, float]]:
        with self.store.transaction() as conn:
            rows = conn.execute(
                "SELECT version, first_seen FROM github_versions WHERE fingerprint = ? AND first_seen <= ?",
                (fingerprint, when + CLOSED_AT_SLACK),
            ).fetchall()
        return [(r[0], float(r[1])) for r in rows]

    @staticmethod
    def service_versions(conn: sqlite3.Connection, fingerprint: str) -> list[tuple[str, float]]:
        """Every ``service.version`` of the group's service (any group of it), with when it was first seen."""
        rows = conn.execute(
            "SELECT gv.version, MIN(gv.first_seen) FROM group_versions gv JOIN groups g ON g.id = gv.group_id"
            " WHERE g.service = (SELECT service FROM groups WHERE fingerprint = ?)"
            " GROUP BY gv.version ORDER BY 2, 1",
            (fingerprint,),
        ).fetchall()
        return [(str(r[0]), float(r[1])) for r in rows]

    # ----------------------------------------------------------- fixes

    @staticmethod
    def fix(conn: sqlite3.Connection, fingerprint: str, active_only: bool = True) -> FixRow | None:
        """The newest fix recorded for the group (only one still in force with ``active_only``)."""
        where = f" AND state IN ({','.join('?' * len(ACTIVE_FIX_STATES))})" if active_only else ""
        row = conn.execute(
            f"SELECT {_FIX_COLS} FROM github_fixes WHERE fingerprint = ?{where} ORDER BY id DESC LIMIT 1",
            (fingerprint, *(ACTIVE_FIX_STATES if active_only else ())),
        ).fetchone()
        return _fix(row) if row else None

    @staticmethod
    def fix_by_id(conn: sqlite3.Connection, fix_id: int) -> FixRow | None:
        row = conn.execute(f"SELECT {_FIX_COLS} FROM github_fixes WHERE id = ?", (fix_id,)).fetchone()
        return _fix(row) if row else None

    @staticmethod
    def fix_for_close(conn: sqlite3.Connection, fingerprint: str, closed_at: float) -> FixRow | None:
        row = conn.execute(
            f"SELECT {_FIX_COLS} FROM github_fixes WHERE fingerprint = ? AND abs(closed_at - ?) <= ?",
            (fingerprint, closed_at, CLOSED_AT_SLACK),
        ).fetchone()
        return _fix(row) if row else None

    @staticmethod
    def add_fix(
        conn: sqlite3.Connection, fingerprint: str, closed_at: float, pr_number: int | None, commit_sha: str,
        merged_at: float, state: str,
    ) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO github_fixes (fingerprint, closed_at, pr_number, commit_sha, merged_at, state,"
            " updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (fingerprint, closed_at, pr_number, commit_sha, merged_at, state, time.time()),
        )

    @staticmethod
    def set_fix(conn: sqlite3.Connection, fix_id: int, **values: Any) -> None:
        cols = ", ".join(f"{k} = ?" for k in values)
        conn.execute(
            f"UPDATE github_fixes SET {cols}, updated = ? WHERE id = ?", (*values.values(), time.time(), fix_id)
        )

    @staticmethod
    def end_fixes(conn: sqlite3.Connection, fingerprint: str, state: str) -> None:
        """The issue is open again: every fix still in force for it ends as ``state``."""
        marks = ",".join("?" * len(ACTIVE_FIX_STATES))
        conn.execute(
            f"UPDATE github_fixes SET state = ?, updated = ? WHERE fingerprint = ? AND state IN ({marks})",
            (state, time.time(), fingerprint, *ACTIVE_FIX_STATES),
        )

    @staticmethod
    def fixes_in(conn: sqlite3.Connection, *states: str) -> list[FixRow]:
        rows = conn.execute(
            f"SELECT {_FIX_COLS} FROM github_fixes WHERE state IN ({','.join('?' * len(states))}) ORDER BY id",
            states,
        ).fetchall()
        return [_fix(r) for r in rows]

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


def _fix(row: tuple[Any, ...]) -> FixRow:
    return FixRow(
        id=int(row[0]),
        fingerprint=str(row[1]),
        closed_at=float(row[2]),
        pr_number=None if row[3] is None else int(row[3]),
        commit_sha=str(row[4]),
        merged_at=float(row[5]),
        base_version=str(row[6]),
        fix_version=str(row[7]),
        deployed_at=None if row[8] is None else float(row[8]),
        state=str(row[9]),
        stale=int(row[10]),
        regressed_version=str(row[11]),
    )


def _item(row: tuple[Any, ...]) -> OutboxItem:
    return OutboxItem(
        id=int(row[0]),
        kind=str(row[1]),
        fingerprint=str(row[2]),
        payload=json.loads(row[3]),
        attempts=int(row[4]),
        retries=int(row[5]),
        not_before=float(row[6]),
        created=float(row[7]),
    )
