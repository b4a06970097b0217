"""Uploaded source maps in the state database: one row per bundle file of a release.

A row is found by its Debug ID, or by release (``service.version``) + the bundle's URL. URLs
are stored as uploaded (``--url-prefix`` + the file's path in the build directory); ``~/``
stands for any origin, as in Sentry. Map and bundle bytes are zlib-compressed: maps are large
and compress about 4:1.
"""

from __future__ import annotations

import sqlite3
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from otel_autoheal.state.sqlite import SQLiteStore

__all__ = [
    "Artifact",
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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sourcemaps (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    release   TEXT NOT NULL,
    url       TEXT NOT NULL,
    name      TEXT NOT NULL,
    debug_id  TEXT,
    map       BLOB NOT NULL,
    bundle    BLOB,
    uploaded  REAL NOT NULL,
    UNIQUE (release, url)
);
CREATE INDEX IF NOT EXISTS sourcemaps_name ON sourcemaps (release, name);
CREATE INDEX IF NOT EXISTS sourcemaps_debug_id ON sourcemaps (debug_id);
"""


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


def ensure_table(store: SQLiteStore) -> None:
    """Create the table if this database has none yet (``executescript`` would commit our transaction)."""
    with store.transaction() as conn:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)


def basename(url: str) -> str:
    """The last path segment of a URL or path, without query or fragment."""
    return url.split("#", 1)[0].split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def save_artifacts(store: SQLiteStore, release: str, artifacts: Sequence[Artifact]) -> None:
    """Store (or replace) every artifact of ``release`` in one transaction."""
    ensure_table(store)
    now = time.time()
    with store.transaction() as conn:
        for item in artifacts:
            conn.execute(
                "INSERT INTO sourcemaps (release, url, name, debug_id, map, bundle, uploaded) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT (release, url) DO UPDATE SET name=excluded.name, debug_id=excluded.debug_id, "
                "map=excluded.map, bundle=excluded.bundle, uploaded=excluded.uploaded",
                (release, item.url, basename(item.url), item.debug_id, zlib.compress(item.map_json, 6),
                 zlib.compress(item.bundle, 6) if item.bundle is not None else None, now),
            )


def _has_table(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='sourcemaps'").fetchone() is not None


def load(store: SQLiteStore, row_id: int) -> tuple[bytes, bytes | None] | None:
    """The map JSON and minified code of row ``row_id`` (None when deleted meanwhile)."""
    with store.read() as conn:
        row = conn.execute("SELECT map, bundle FROM sourcemaps WHERE id = ?", (row_id,)).fetchone()
    if row is None:
        return None
    return zlib.decompress(row[0]), zlib.decompress(row[1]) if row[1] is not None else None


def _stored(row: Sequence[Any]) -> StoredMap:
    return StoredMap(int(row[0]), str(row[1]), str(row[2]), str(row[3]) if row[3] else None, float(row[4]), int(row[5]))


_COLUMNS = "id, release, url, debug_id, uploaded, length(map)"


def find_by_debug_id(store: SQLiteStore, debug_id: str) -> StoredMap | None:
    with store.read() as conn:
        if not _has_table(conn):
            return None
        row = conn.execute(f"SELECT {_COLUMNS} FROM sourcemaps WHERE debug_id = ? ORDER BY uploaded DESC LIMIT 1",
                           (debug_id,)).fetchone()
    return _stored(row) if row else None


def url_path(url: str) -> str:
    """``https://h/a/b.js?v=1`` → ``/a/b.js``; ``~/a/b.js`` → ``/a/b.js``; a plain path stays."""
    url = url.split("#", 1)[0].split("?", 1)[0]
    if url.startswith("~"):
        return url[1:]
    scheme, sep, rest = url.partition("://")
    if sep and "/" not in scheme:
        return "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    return url


def find_by_url(store: SQLiteStore, release: str, url: str) -> StoredMap | None:
    """The map of ``url`` in ``release``: the exact URL, else ``~/path``, else the longest stored path
    that ends the frame's path at a segment boundary (a Node bundle at /srv/app/dist/server.js
    matches an upload of dist/ with the default prefix)."""
    name = basename(url)
    with store.read() as conn:
        if not _has_table(conn):
            return None
        rows = conn.execute(f"SELECT {_COLUMNS} FROM sourcemaps WHERE release = ? AND name = ?", (release, name)).fetchall()
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


def release_has_maps(store: SQLiteStore, release: str) -> bool:
    with store.read() as conn:
        if not _has_table(conn):
            return False
        return conn.execute("SELECT 1 FROM sourcemaps WHERE release = ? LIMIT 1", (release,)).fetchone() is not None


def list_maps(store: SQLiteStore, release: str | None = None) -> list[StoredMap]:
    with store.read() as conn:
        if not _has_table(conn):
            return []
        if release is None:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM sourcemaps ORDER BY release, url").fetchall()
        else:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM sourcemaps WHERE release = ? ORDER BY url", (release,)).fetchall()
    return [_stored(r) for r in rows]


def delete_release(store: SQLiteStore, release: str, url: str | None = None) -> int:
    """Delete the maps of ``release`` (only ``url``'s when given); returns how many rows went."""
    ensure_table(store)
    with store.transaction() as conn:
        if url is None:
            return conn.execute("DELETE FROM sourcemaps WHERE release = ?", (release,)).rowcount
        return conn.execute("DELETE FROM sourcemaps WHERE release = ? AND url = ?", (release, url)).rowcount
