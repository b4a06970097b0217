"""Uploaded source maps in the state database: one row per bundle file of a release.

A row is found by its Debug ID, or by release (``service.version``) + the bundle's URL. URLs
are stored as uploaded (``--url-prefix`` + the file's path in the build directory); ``~/``
stands for any origin, as in Sentry. Map and bundle bytes are zlib-compressed: maps are large
and compress about 4:1.

Both state stores hold the table (SQLite: BLOB columns; PostgreSQL: BYTEA, shared by every
instance, so a map uploaded with ``--database-url`` resolves frames on all of them). The SQL
below is written once with ``?`` placeholders; ``_Dialect`` supplies what differs.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from otel_autoheal.state.postgres import PostgresStore
from otel_autoheal.state.sqlite import SQLiteStore

__all__ = [
    "Artifact",
    "MapStore",
    "StoredMap",
    "basename",
    "delete_release",
    "ensure_table",
    "find_by_debug_id",
    "find_by_url",
    "list_maps",
    "load",
    "release_has_maps",
    "save_artifacts",
    "url_path",
]

#: The stores that can hold uploaded maps.
MapStore = SQLiteStore | PostgresStore

_INDEXES = (
    "CREATE INDEX IF NOT EXISTS sourcemaps_name ON sourcemaps (release, name)",
    "CREATE INDEX IF NOT EXISTS sourcemaps_debug_id ON sourcemaps (debug_id)",
)

_TABLE = """CREATE TABLE IF NOT EXISTS sourcemaps (
    id        {id} PRIMARY KEY{autoincrement},
    release   TEXT NOT NULL,
    url       TEXT NOT NULL,
    name      TEXT NOT NULL,
    debug_id  TEXT,
    map       {blob} NOT NULL,
    bundle    {blob},
    uploaded  {real} NOT NULL,
    UNIQUE (release, url)
)"""

#: Key of the transaction-level advisory lock under which PostgreSQL instances create the table
#: (two ``CREATE TABLE IF NOT EXISTS`` at the same moment can otherwise both try to create it).
_TABLE_LOCK = 0x6175746F6D617073  # "automaps"


@dataclass(frozen=True)
class _Dialect:
    """What the two databases spell differently."""

    schema: tuple[str, ...]
    has_table: str
    placeholder: str
    lock: str | None

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)


_SQLITE = _Dialect(
    schema=(_TABLE.format(id="INTEGER", autoincrement=" AUTOINCREMENT", blob="BLOB", real="REAL"), *_INDEXES),
    has_table="SELECT 1 FROM sqlite_master WHERE type='table' AND name='sourcemaps'",
    placeholder="?",
    lock=None,
)
_POSTGRES = _Dialect(
    schema=(_TABLE.format(id="BIGSERIAL", autoincrement="", blob="BYTEA", real="DOUBLE PRECISION"), *_INDEXES),
    has_table="SELECT 1 WHERE to_regclass('sourcemaps') IS NOT NULL",
    placeholder="%s",
    lock=f"SELECT pg_advisory_xact_lock({_TABLE_LOCK})",
)


def _dialect(store: MapStore) -> _Dialect:
    return _SQLITE if isinstance(store, SQLiteStore) else _POSTGRES


@dataclass(frozen=True)
class Artifact:
    """One bundle of a build: its URL, its source map (JSON bytes) and the minified code, if found."""

    url: str
    map_json: bytes
    bundle: bytes | None
    debug_id: str | None


@dataclass(frozen=True)
class StoredMap:
    """A row of the table, without its bytes (``load`` reads them)."""

    id: int
    release: str
    url: str
    debug_id: str | None
    uploaded: float
    map_bytes: int


def ensure_table(store: MapStore) -> None:
    """Create the table if this database has none yet (``executescript`` would commit our transaction)."""
    dialect = _dialect(store)
    with store.transaction() as conn:
        if dialect.lock:
            conn.execute(dialect.lock)
        for statement in dialect.schema:
            conn.execute(statement)


def basename(url: str) -> str:
    """The last path segment of a URL or path, without query or fragment."""
    return url.split("#", 1)[0].split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def save_artifacts(store: MapStore, release: str, artifacts: Sequence[Artifact]) -> None:
    """Store (or replace) every artifact of ``release`` in one transaction."""
    ensure_table(store)
    sql = _dialect(store).sql(
        "INSERT INTO sourcemaps (release, url, name, debug_id, map, bundle, uploaded) VALUES (?,?,?,?,?,?,?) "
        "ON CONFLICT (release, url) DO UPDATE SET name=excluded.name, debug_id=excluded.debug_id, "
        "map=excluded.map, bundle=excluded.bundle, uploaded=excluded.uploaded")
    now = time.time()
    with store.transaction() as conn:
        for item in artifacts:
            conn.execute(sql, (release, item.url, basename(item.url), item.debug_id, zlib.compress(item.map_json, 6),
                               zlib.compress(item.bundle, 6) if item.bundle is not None else None, now))


def _rows(store: MapStore, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]] | None:
    """The rows of one query in one snapshot; None when no map was ever uploaded to this database."""
    dialect = _dialect(store)
    with store.read() as conn:
        if conn.execute(dialect.has_table).fetchone() is None:
            return None
        return list(conn.execute(dialect.sql(sql), tuple(params)).fetchall())


def load(store: MapStore, row_id: int) -> tuple[bytes, bytes | None] | None:
    """The map JSON and minified code of row ``row_id`` (None when deleted meanwhile)."""
    rows = _rows(store, "SELECT map, bundle FROM sourcemaps WHERE id = ?", (row_id,))
    if not rows:
        return None
    map_bytes, bundle = rows[0]
    return zlib.decompress(map_bytes), zlib.decompress(bundle) if bundle is not None else None


def _stored(row: Sequence[Any]) -> StoredMap:
    return StoredMap(int(row[0]), str(row[1]), str(row[2]), str(row[3]) if row[3] else None, float(row[4]), int(row[5]))


_COLUMNS = "id, release, url, debug_id, uploaded, length(map)"


def find_by_debug_id(store: MapStore, debug_id: str) -> StoredMap | None:
    rows = _rows(store, f"SELECT {_COLUMNS} FROM sourcemaps WHERE debug_id = ? ORDER BY uploaded DESC LIMIT 1",
                 (debug_id,))
    return _stored(rows[0]) if rows else None


def url_path(url: str) -> str:
    """``https://h/a/b.js?v=1`` → ``/a/b.js``; ``~/a/b.js`` → ``/a/b.js``; a plain path stays."""
    url = url.split("#", 1)[0].split("?", 1)[0]
    if url.startswith("~"):
        return url[1:]
    scheme, sep, rest = url.partition("://")
    if sep and "/" not in scheme:
        return "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return url


def find_by_url(store: MapStore, release: str, url: str) -> StoredMap | None:
    """The map of ``url`` in ``release``: the exact URL, else ``~/path``, else the longest stored path
    that ends the frame's path at a segment boundary (a Node bundle at /srv/app/dist/server.js
    matches an upload of dist/ with the default prefix)."""
    rows = _rows(store, f"SELECT {_COLUMNS} FROM sourcemaps WHERE release = ? AND name = ?", (release, basename(url)))
    if not rows:
        return None
    wanted = url.split("#", 1)[0].split("?", 1)[0]
    path = url_path(wanted)
    best: tuple[int, Sequence[Any]] | None = None
    for row in rows:
        stored_url = str(row[2])
        if stored_url == wanted:
            return _stored(row)
        stored_path = url_path(stored_url)
        # An absolute URL must match its origin; "~/" and plain paths match any.
        if "://" in stored_url and "://" in wanted and stored_url.split("/")[2] != wanted.split("/")[2]:
            continue
        if path == stored_path or path.endswith("/" + stored_path.lstrip("/")):
            score = len(stored_path)
            if best is None or score > best[0]:
                best = (score, row)
    return _stored(best[1]) if best else None


def release_has_maps(store: MapStore, release: str) -> bool:
    return bool(_rows(store, "SELECT 1 FROM sourcemaps WHERE release = ? LIMIT 1", (release,)))


def list_maps(store: MapStore, release: str | None = None) -> list[StoredMap]:
    if release is None:
        rows = _rows(store, f"SELECT {_COLUMNS} FROM sourcemaps ORDER BY release, url")
    else:
        rows = _rows(store, f"SELECT {_COLUMNS} FROM sourcemaps WHERE release = ? ORDER BY url", (release,))
    return [_stored(r) for r in rows or ()]


def delete_release(store: MapStore, release: str, url: str | None = None) -> int:
    """Delete the maps of ``release`` (only ``url``'s when given); returns how many rows went."""
    ensure_table(store)
    dialect = _dialect(store)
    with store.transaction() as conn:
        if url is None:
            return int(conn.execute(dialect.sql("DELETE FROM sourcemaps WHERE release = ?"), (release,)).rowcount)
        return int(conn.execute(dialect.sql("DELETE FROM sourcemaps WHERE release = ? AND url = ?"),
                                (release, url)).rowcount)
