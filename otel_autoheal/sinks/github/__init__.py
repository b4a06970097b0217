"""The GitHub issue sink: PyGithub over a durable outbox, with budgets and an optional Copilot hand-off.

Chosen when ``GITHUB_REPOSITORY`` and a token (``GITHUB_TOKEN``, ``GH_TOKEN`` or ``gh auth token``)
are configured::

    sink = GitHubSink.from_env(store)          # raises SinkConfigError naming the bad key

The names below are imported on first use: reading the ledger (``otel-autoheal issues``) must not
pay for importing PyGithub.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otel_autoheal.sinks.github.config import GitHubConfig, github_configured
    from otel_autoheal.sinks.github.sink import GitHubSink
    from otel_autoheal.sinks.github.wiring import create_github_sink, offline_status

__all__ = ["GitHubConfig", "GitHubSink", "create_github_sink", "github_configured", "offline_status"]

_HOME = {
    "GitHubConfig": "config",
    "github_configured": "config",
    "GitHubSink": "sink",
    "create_github_sink": "wiring",
    "offline_status": "wiring",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
