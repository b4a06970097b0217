"""``otel-autoheal repair``: move a damaged state database aside and salvage its readable rows.

The damaged file (with its ``-wal``/``-shm``) is renamed to a timestamped backup next to it and
never modified; a fresh database is built beside it from every row SQLite can still read and
then renamed into place, so an interrupted repair leaves either the backup or the result, never
a half-made database at the state path. Rows on damaged pages are lost; the report says how many
rows of each table were saved.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from otel_autoheal.errors import StateError
from otel_autoheal.state.sqlite import SQLiteStore

__all__ = ["RepairReport", "repair_database"]

#: Point lookups tried past the last readable row of a table whose size cannot be read.
_PROBE_LIMIT = 200_000


@dataclass
class RepairReport:
    """What ``repair_database`` did."""

    path: Path
    backup: Path
    #: table name -> rows saved into the fresh database
    saved: dict[str, int] = field(default_factory=dict)
    #: tables whose rows could not be read at all
    lost_tables: list[str] = field(default_factory=list)


def _tables(damaged: sqlite3.Connection) -> list[tuple[str, str]]:
    """``(name, CREATE sql)`` of the damaged file's tables, or the core tables when unreadable."""
    try:
        rows = damaged.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND sql IS NOT NULL"
        ).fetchall()
        return [(str(name), str(sql)) for name, sql in rows]
    except sqlite3.DatabaseError:
        return []


def _indexes(damaged: sqlite3.Connection) -> list[str]:
    try:
        return [str(r[0]) for r in damaged.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")]
    except sqlite3.DatabaseError:
        return []


def _upper_rowid(damaged: sqlite3.Connection, table: str) -> int:
    for sql in (f'SELECT MAX(rowid) FROM "{table}"', "SELECT seq FROM sqlite_sequence WHERE name = ?"):
        try:
            row = damaged.execute(sql, (table,) if "?" in sql else ()).fetchone()
        except sqlite3.DatabaseError:
            continue
        if row and row[0] is not None:
            return int(row[0])
    return -1


def _rows(damaged: sqlite3.Connection, table: str) -> Iterator[tuple[object, ...]]:
    """Every readable ``(rowid, *columns)``: a scan, then row-by-row lookups past a damaged page."""
    last = 0
    try:
        for row in damaged.execute(f'SELECT rowid, * FROM "{table}" ORDER BY rowid'):
            last = int(row[0])
            yield tuple(row)
        return
    except sqlite3.DatabaseError:
        pass
    upper = _upper_rowid(damaged, table)
    misses = 0
    rowid = last + 1
    while (rowid <= upper) if upper >= 0 else (misses < _PROBE_LIMIT):
        try:
            row = damaged.execute(f'SELECT rowid, * FROM "{table}" WHERE rowid = ?', (rowid,)).fetchone()
        except sqlite3.DatabaseError:
            row = None
        if row is None:
            misses += 1
        else:
            misses = 0
            yield tuple(row)
        rowid += 1


def repair_database(path: str | Path) -> RepairReport:
    """Move ``path`` aside as ``<name>.damaged-<UTC time>`` and rebuild ``path`` from its readable rows."""
    path = Path(path)
    if not path.exists():
        raise StateError(f"no state database at {path} (nothing to repair; check --state / AUTOHEAL_STATE_DIR)")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    backup = path.with_name(f"{path.name}.damaged-{stamp}")
    try:
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{path}{suffix}")
            if source.exists():
                os.rename(source, f"{backup}{suffix}")
    except OSError as exc:
        raise StateError(f"cannot move {path} aside to {backup}: {exc.strerror or exc}") from None
    report = RepairReport(path, backup)
    building = path.with_name(f"{path.name}.repairing")
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{building}{suffix}").unlink(missing_ok=True)
    # The backup is kept exactly as it was found: read-only, and without a WAL to read, immutable
    # (so that not even an empty -wal/-shm pair is created next to it).
    has_wal = Path(f"{backup}-wal").exists()
    damaged = sqlite3.connect(f"file:{backup}?mode=ro{'' if has_wal else '&immutable=1'}", uri=True)
    fresh = sqlite3.connect(str(building), isolation_level=None)
    try:
        try:
            version = int(damaged.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError:
            version = 0
        fresh.execute(f"PRAGMA user_version = {version}")
        fresh.execute("BEGIN")
        tables = _tables(damaged)
        if not tables:
            report.lost_tables.append("sqlite_master (the schema itself)")
        for name, create in tables:
            fresh.execute(create)
            insert = (f'INSERT OR IGNORE INTO "{name}" (rowid, {_column_list(damaged, name)})'
                      f' VALUES (?{", ?" * len(_column_names(damaged, name))})')
            saved = 0
            for row in _rows(damaged, name):
                fresh.execute(insert, row)
                saved += 1
            report.saved[name] = saved
            if saved == 0 and _upper_rowid(damaged, name) > 0:
                report.lost_tables.append(name)
        _keep_sequences(damaged, fresh)
        for create in _indexes(damaged):
            try:
                fresh.execute(create)
            except sqlite3.Error:
                pass  # e.g. a UNIQUE index over rows that only became duplicates through damage
        fresh.execute("COMMIT")
    finally:
        damaged.close()
        fresh.close()
    # The result goes through the normal open path: schema created or migrated, file identity set.
    SQLiteStore(building, verify=True).close()
    os.replace(building, path)
    for suffix in ("-wal", "-shm"):
        Path(f"{building}{suffix}").unlink(missing_ok=True)
    return report


def _keep_sequences(damaged: sqlite3.Connection, fresh: sqlite3.Connection) -> None:
    """AUTOINCREMENT ids are never reused, not even those of rows that were lost or deleted."""
    try:
        sequences = damaged.execute("SELECT name, seq FROM sqlite_sequence").fetchall()
    except sqlite3.DatabaseError:
        return
    for name, seq in sequences:
        if fresh.execute("SELECT 1 FROM sqlite_sequence WHERE name = ?", (name,)).fetchone():
            fresh.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = ? AND seq < ?", (seq, name, seq))
        else:
            fresh.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (name, seq))


def _column_names(damaged: sqlite3.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in damaged.execute(f'PRAGMA table_info("{table}")')]


def _column_list(damaged: sqlite3.Connection, table: str) -> str:
    return ", ".join(f'"{name}"' for name in _column_names(damaged, table))
