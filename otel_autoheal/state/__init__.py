"""Durable state: groups, their occurrences, the intake journal and (for remote sinks) their own tables.

Two implementations of one contract (``tests/state/test_store_contract.py`` runs both):
``SQLiteStore``, the embedded default (one file in the state directory), and ``PostgresStore``,
selected by ``database_url`` when several instances share the work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from otel_autoheal.state._protocol import Store
from otel_autoheal.state.sqlite import SQLiteStore

if TYPE_CHECKING:
    from otel_autoheal.state.postgres import PostgresStore

__all__ = ["SQLiteStore", "Store", "open_store"]

#: File name of the SQLite state database inside the state directory.
STATE_FILE = "autoheal.sqlite3"


def open_store(config: Any, owner: str = "") -> SQLiteStore | PostgresStore:
    """The store ``config`` names: PostgreSQL when ``database_url`` is set, else SQLite in ``state_dir``.

    ``owner`` names this instance's intake journal on PostgreSQL (ignored for SQLite).
    """
    url = getattr(config, "database_url", "")
    if url:
        from otel_autoheal.state.postgres import PostgresStore

        return PostgresStore(url, owner=owner)
    from otel_autoheal.config import state_path

    return SQLiteStore(state_path(config) / STATE_FILE, verify=True)
