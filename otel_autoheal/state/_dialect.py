"""SQL shared by the SQLite and PostgreSQL stores, and the one place per backend where it differs.

Shared statements (the occurrence history, the page's reads) are written once, with ``?``
placeholders, and run through ``PortableConn``, which hands them to the connection in its
backend's form (``%s`` for psycopg). What cannot be written once — table definitions, the
"anything new?" token, case-insensitive ``LIKE``, looking up a table, a read-only snapshot — is
a field of ``SQLITE`` or ``POSTGRES`` below, so each backend's own SQL is in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["POSTGRES", "SQLITE", "Dialect", "PortableConn"]


@dataclass(frozen=True)
class Dialect:
    """What one backend needs that the shared SQL cannot say the same way on both."""

    #: "sqlite" or "postgres".
    name: str
    #: The driver's placeholder (``?`` for sqlite3, ``%s`` for psycopg).
    placeholder: str
    #: Case-insensitive ``LIKE`` (SQLite's ``LIKE`` is, for ASCII; PostgreSQL's is not).
    ilike: str
    #: The history tables and the indexes the page sorts and filters by, one statement each.
    history_schema: tuple[str, ...]
    #: One value that changes whenever an occurrence is recorded; at most one ``?``: the Unix time
    #: from which recently recorded groups are looked at (see ``_history.change_token``).
    change_token: str
    #: ``?`` = a table name; a row when the table exists.
    table_exists: str
    #: Run first in a page's read transaction so that it is one read-only snapshot ("" = already is).
    snapshot: str

    def sql(self, text: str) -> str:
        """``text`` (with ``?`` placeholders) in this backend's placeholder style."""
        return text if self.placeholder == "?" else _with_placeholder(text, self.placeholder)


@lru_cache(maxsize=512)
def _with_placeholder(text: str, placeholder: str) -> str:
    # psycopg reads "%" as the start of a placeholder: the shared SQL never has a literal one.
    assert "%" not in text, "shared SQL passes LIKE patterns as parameters, never as literals"
    return text.replace("?", placeholder)


class PortableConn:
    """A connection of either backend that runs the shared SQL (``?`` placeholders)."""

    def __init__(self, conn: Any, dialect: Dialect) -> None:
        #: The driver's own connection (for code that speaks one backend only).
        self.conn = conn
        self.dialect = dialect

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """Run ``sql``; the result is the driver's cursor (iterable, ``fetchone``, ``fetchall``)."""
        return self.conn.execute(self.dialect.sql(sql), tuple(args))


def _history_schema(integer: str, real: str, serial_key: str, indexed: tuple[str, ...]) -> tuple[str, ...]:
    """The history tables in one backend's column types, and an index on each ``indexed`` column of groups."""
    return (
        f"""CREATE TABLE IF NOT EXISTS group_hours (
            group_id {integer} NOT NULL,
            hour     {integer} NOT NULL,
            count    {integer} NOT NULL,
            PRIMARY KEY (group_id, hour)
        )""",
        f"""CREATE TABLE IF NOT EXISTS group_days (
            group_id {integer} NOT NULL,
            day      {integer} NOT NULL,
            count    {integer} NOT NULL,
            PRIMARY KEY (group_id, day)
        )""",
        f"""CREATE TABLE IF NOT EXISTS group_occurrences (
            id          {serial_key},
            group_id    {integer} NOT NULL,
            time        {real} NOT NULL,
            processed   {real} NOT NULL,
            version     TEXT NOT NULL,
            environment TEXT NOT NULL,
            trace_id    TEXT NOT NULL,
            span_id     TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS group_occurrences_group ON group_occurrences (group_id, id)",
        f"""CREATE TABLE IF NOT EXISTS group_details (
            group_id {integer} PRIMARY KEY,
            detail   TEXT NOT NULL
        )""",
        *(f"CREATE INDEX IF NOT EXISTS groups_{column} ON groups ({column})" for column in indexed),
    )


# Plain rowid tables (not WITHOUT ROWID): ``otel-autoheal repair`` salvages rows by rowid.
SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    ilike="LIKE",
    history_schema=_history_schema("INTEGER", "REAL", "INTEGER PRIMARY KEY AUTOINCREMENT",
                                   ("last_seen", "first_seen", "count", "service", "source")),
    # One writer at a time commits in id order, so the newest id handed out is exact and O(1).
    change_token="SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'group_occurrences'",
    table_exists="SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
    snapshot="",  # the page reads on a read-only connection, one BEGIN … COMMIT per block
)

POSTGRES = Dialect(
    name="postgres",
    placeholder="%s",
    ilike="ILIKE",
    # groups_last_seen is the store's own, sorted both ways (``postgres.py``).
    history_schema=_history_schema("BIGINT", "DOUBLE PRECISION", "BIGSERIAL PRIMARY KEY",
                                   ("first_seen", "count", "service", "source", "last_processed")),
    # Instances commit ids out of order (a smaller id may commit after a larger one is visible),
    # so the newest id could miss an occurrence; every counted occurrence adds one to its group's
    # count and sets its last_processed, so the recently recorded groups' count and sum always move.
    change_token="SELECT COUNT(*), COALESCE(SUM(count), 0) FROM groups WHERE last_processed >= ?",
    table_exists="SELECT 1 WHERE to_regclass(?) IS NOT NULL",
    snapshot="SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
)
