"""Fixtures for the page tests: import paths, where the screenshots of a run are kept, both state backends."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for _p in (str(ROOT), str(Path(__file__).resolve().parent)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from otel_autoheal.state.postgres import PostgresStore  # noqa: E402
from otel_autoheal.state.sqlite import SQLiteStore  # noqa: E402
from tests.github_standin.fixture import github_openapi, github_standin, pytest_configure  # noqa: E402,F401
from tests.postgres_server import PostgresServer  # noqa: E402


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """``.test-artifacts/ui/`` in the checkout (ignored by git): the latest run's screenshots."""
    path = ROOT / ".test-artifacts" / "ui"
    path.mkdir(parents=True, exist_ok=True)
    return path



@pytest.fixture(params=["sqlite", "postgres"])
def backend_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The service's environment for each state backend: none for SQLite, a fresh PostgreSQL database's URL."""
    if request.param == "sqlite":
        return {}
    server: PostgresServer = request.getfixturevalue("pg_server")
    return {"AUTOHEAL_DATABASE_URL": server.new_database()}


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], SQLiteStore | PostgresStore]]:
    """Opens the state store of each backend in this process (a fresh file or database); closed afterwards."""
    target = str(tmp_path / "autoheal.sqlite3")
    if request.param == "postgres":
        server: PostgresServer = request.getfixturevalue("pg_server")
        target = server.new_database()
    opened: list[SQLiteStore | PostgresStore] = []

    def open_one() -> SQLiteStore | PostgresStore:
        store = PostgresStore(target) if request.param == "postgres" else SQLiteStore(target)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()
