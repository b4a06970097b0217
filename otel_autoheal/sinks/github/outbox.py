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

__all__ = ["CLOSED_AT_SLACK", "IssueRow", "Outbox", "OutboxItem"]

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
    created            REAL NOT NULL
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
CREATE TABLE IF NOT EXISTS github_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class OutboxItem:
    """One pending GitHub write (or read that may lead to one)."""

    id: int
    kind: str  # create | comment | check | reopen | handoff
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

    @property
    def muted(self) -> bool:
        return self.state == "closed" and self.state_reason == "not_planned"


_ISSUE_COLS = (
    "fingerprint, issue_number, source, count, newest_version, state, state_reason, closed_at,"
    " closed_version, state_checked_at, last_comment_at, milestone, has_in_app, handoff"
)


class Outbox:
    """Thin typed access to the ``github_*`` tables; every method is one short transaction."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        with store.transaction() as conn:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    conn.execute(stmt)

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
        with self.store.transaction() as conn:
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
