"""The ``github_*`` tables of the state database, and how their rows become ``records`` values.

Private to ``ledger``: no other module of the sink writes SQL.
"""

from __future__ import annotations

import json
from typing import Any

from otel_autoheal.sinks.github.records import FixRow, IssueRow, OutboxItem

SCHEMA = """
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
    updated     REAL NOT NULL,
    claimed_by  TEXT,
    lease_until REAL NOT NULL DEFAULT 0
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

#: Columns added after the first release, created on databases that predate them (table -> name -> type).
ADDED_COLUMNS = {
    "github_issues": {"trusted": "INTEGER", "provenance": "TEXT NOT NULL DEFAULT ''"},
    "github_outbox": {"claimed_by": "TEXT", "lease_until": "REAL NOT NULL DEFAULT 0"},
}


def postgres_schema() -> list[str]:
    """The same tables for PostgreSQL: one definition, so the two backends cannot drift apart."""
    text = (SCHEMA.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
            .replace(" REAL", " DOUBLE PRECISION").replace(" INTEGER", " BIGINT"))
    return [stmt for stmt in text.split(";") if stmt.strip()]


def postgres_type(sqlite_decl: str) -> str:
    """``ADDED_COLUMNS``' declarations in PostgreSQL's words."""
    return sqlite_decl.replace("REAL", "DOUBLE PRECISION").replace("INTEGER", "BIGINT")

FIX_COLS = (
    "id, fingerprint, closed_at, pr_number, commit_sha, merged_at, base_version, fix_version, deployed_at,"
    " state, stale, regressed_version"
)
ISSUE_COLS = (
    "fingerprint, issue_number, source, count, newest_version, state, state_reason, closed_at,"
    " closed_version, state_checked_at, last_comment_at, milestone, has_in_app, handoff, trusted, provenance"
)
ITEM_COLS = "id, kind, fingerprint, payload, attempts, retries, not_before, created"


def issue_row(row: tuple[Any, ...]) -> IssueRow:
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


def fix_row(row: tuple[Any, ...]) -> FixRow:
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


def outbox_item(row: tuple[Any, ...]) -> OutboxItem:
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
