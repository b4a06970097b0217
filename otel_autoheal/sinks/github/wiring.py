"""How the service builds the GitHub sink and how ``otel-autoheal status`` reads it offline."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from otel_autoheal.errors import SinkConfigError
from otel_autoheal.sinks.github.budget import Budget
from otel_autoheal.sinks.github.config import GitHubConfig
from otel_autoheal.sinks.github.ledger import ledger_for
from otel_autoheal.sinks.github.sink import GitHubSink
from otel_autoheal.sinks.github.status import build_status
from otel_autoheal.state import Store
from otel_autoheal.state.sqlite import SQLiteStore

__all__ = ["create_github_sink", "offline_status"]


def create_github_sink(
    config: object, store: Store, metrics: Any = None, env: Mapping[str, str] | None = None
) -> GitHubSink:
    """The sink for ``serve``: settings from env > ``[github]`` table; gauges on ``metrics``."""
    cfg = GitHubConfig.for_service(config, env)
    sink = GitHubSink(store, cfg)
    if metrics is not None:
        # Every gauge is a COUNT on a read connection: scrapes never wait for (or hold) the write lock.
        metrics.gauge("autoheal_github_outbox_pending", "GitHub writes waiting in the outbox.",
                      lambda: sink.ledger.counts()["pending"])
        metrics.gauge("autoheal_github_outbox_failed", "GitHub writes given up (see otel-autoheal status).",
                      lambda: sink.ledger.counts()["failed"])
        metrics.gauge("autoheal_github_issues", "Groups filed as GitHub issues.", sink.ledger.issue_count)
        metrics.gauge("autoheal_github_writes_last_hour", "Content-creating GitHub requests in the last hour.",
                      lambda: sink.budget.writes_since(time.time() - 3600))
        metrics.gauge("autoheal_github_fixes_awaiting_deploy",
                      "Issues closed by a merged PR whose fix no version carries yet.",
                      lambda: sink.ledger.fix_counts()["awaiting_deploy"])
        metrics.gauge("autoheal_github_fixes_verified", "Fixes verified by a silent window after their deploy.",
                      lambda: sink.ledger.fix_counts()["verified"])
        metrics.gauge("autoheal_github_fixes_regressed", "Fixes that did not hold: the issue was reopened.",
                      lambda: sink.ledger.fix_counts()["regressed"])
    return sink


def offline_status(config: object, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What ``status()`` shows, read from the state database without starting a worker or calling GitHub."""
    env = os.environ if env is None else env
    info: dict[str, Any] = {"sink": "github"}
    try:
        cfg = GitHubConfig.for_service(config, env)
    except SinkConfigError as exc:
        info["config_error"] = str(exc)
        return info
    info.update({"repo": cfg.repository, "api_url": cfg.api_url, "token_source": cfg.token_source})
    store: Any
    url = str(getattr(config, "database_url", "") or "")
    if url:
        from otel_autoheal.state.postgres import PostgresStore

        store = PostgresStore(url)
    else:
        path = Path(str(getattr(config, "state_dir", "."))).expanduser() / "autoheal.sqlite3"
        if not path.exists():
            return info
        store = SQLiteStore(path)
    try:
        ledger = ledger_for(store)
        info.update(build_status(cfg, ledger, Budget(ledger, cfg)))
    finally:
        store.close()
    return info
