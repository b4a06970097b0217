"""The GitHub sink's status: one builder for the running sink and for ``otel-autoheal status``.

The ledger holds the counts; what only a running sink knows (its thread, its counters) comes
from ``SinkHealth``. Without one (another process reads the state database), the last error,
the pause and the hand-off error are the copies the sink persisted as meta values.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from otel_autoheal.sinks.github.budget import Budget
from otel_autoheal.sinks.github.config import GitHubConfig
from otel_autoheal.sinks.github.ledger import GitHubLedger

__all__ = ["SinkHealth", "build_status", "stored_message"]

logger = logging.getLogger("otel_autoheal.sinks.github")


class SinkHealth:
    """What the running sink reports beyond the ledger: errors, pause, identity, counters.

    Errors are redacted (never the token) and persisted as meta values for ``otel-autoheal
    status`` in another process.
    """

    def __init__(self, ledger: GitHubLedger, config: GitHubConfig, running: Callable[[], bool]) -> None:
        self.ledger = ledger
        self._token = config.token
        self.running = running
        self.identity: str | None = config.login or None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.paused: str | None = None
        self.handoff_error: str | None = None
        self.handled = 0
        self.handle_errors = 0
        ledger.set_meta("paused", "")  # a restart (with fixed settings) tries again

    def redact(self, text: str) -> str:
        token = self._token
        return text.replace(token, "[REDACTED]") if token and token in text else text

    def error(self, message: str) -> None:
        self.last_error = self.redact(message)
        self.last_error_at = time.time()
        self._persist("last_error", self.last_error)

    def pause(self, message: str) -> None:
        self.paused = message
        self._persist("paused", message)
        self.error(message)

    def handoff_failed(self, message: str) -> None:
        self.handoff_error = self.redact(message)
        self._persist("handoff_error", self.handoff_error)

    def _persist(self, key: str, value: str) -> None:
        try:
            self.ledger.set_meta(key, json.dumps({"message": self.redact(value), "at": time.time()}))
        except Exception:  # status bookkeeping must never break the worker
            logger.debug("cannot persist %s", key, exc_info=True)


def stored_message(ledger: GitHubLedger, key: str) -> str | None:
    """The message a sink persisted under ``key`` (see ``SinkHealth``), or None."""
    raw = ledger.meta(key)
    if not raw:
        return None
    try:
        return str(json.loads(raw)["message"])
    except (ValueError, KeyError, TypeError):
        return None


def build_status(
    config: GitHubConfig, ledger: GitHubLedger, budget: Budget, health: SinkHealth | None = None
) -> dict[str, Any]:
    """The sink's status; ``health`` is the running sink's (None: read offline from the ledger)."""
    counts = ledger.counts()
    oldest = ledger.oldest_pending()
    info: dict[str, Any] = {
        "sink": "github",
        "repo": config.repository,
        "api_url": config.api_url,
        "token_source": config.token_source,
    }
    if health is not None:
        info.update(identity=health.identity, running=health.running(), paused=health.paused)
    else:
        info.update(identity=config.login or ledger.meta("github_login"), paused=stored_message(ledger, "paused"))
    info["issues_filed"] = len(ledger.issue_numbers())
    info["outbox"] = {
        "pending": counts["pending"],
        "failed": counts["failed"],
        "done": counts["done"],
        "oldest_pending_age": round(time.time() - oldest, 1) if oldest else None,
        "recent_failures": ledger.failures(),
    }
    info["budget"] = budget.usage()
    if health is not None:
        info.update(last_error=health.last_error, last_error_at=health.last_error_at,
                    occurrences_handled=health.handled, handle_errors=health.handle_errors)
    else:
        info["last_error"] = stored_message(ledger, "last_error")
    info["handoff"] = {
        "mode": config.handoff,
        "dry_run": config.handoff_dry_run,
        "counts": ledger.handoff_counts(),
        "last_error": health.handoff_error if health is not None else stored_message(ledger, "handoff_error"),
    }
    info["fixes"] = {**ledger.fix_counts(), "verify_window": config.verify_window}
    return info
