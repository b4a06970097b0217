"""Issue sinks: where grouped errors end up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from otel_autoheal.sinks.base import Sink
from otel_autoheal.sinks.local import LocalSink
from otel_autoheal.sinks.memory import MemorySink

__all__ = ["ENV_SINK", "LocalSink", "MemorySink", "Sink", "github_available", "select_sink"]

#: ``AUTOHEAL_SINK=github`` opts the in-process exporters into the GitHub sink (``serve`` needs no opt-in).
ENV_SINK = "AUTOHEAL_SINK"


def github_available(config: object, env: Mapping[str, str] | None = None) -> bool:
    """True when a GitHub repository and a token source are configured."""
    env = os.environ if env is None else env
    section = getattr(config, "github", {}) or {}
    repo = section.get("repository") or env.get("GITHUB_REPOSITORY")
    token = env.get("GITHUB_TOKEN") or env.get("GH_TOKEN") or section.get("token_command")
    return bool(repo and token)


def select_sink(config: Any, store: Any, metrics: Any = None, *, explicit_github: bool = False,
                env: Mapping[str, str] | None = None) -> Sink:
    """The GitHub sink when a repository and a token are configured, else the local store.

    With ``explicit_github`` (the in-process exporters), GITHUB_REPOSITORY/GITHUB_TOKEN alone are
    not enough, because GitHub Actions sets both in every job: the ``[github] repository`` setting
    or ``AUTOHEAL_SINK=github`` must also be given.
    """
    env = os.environ if env is None else env
    if github_available(config, env):
        section = getattr(config, "github", {}) or {}
        if not explicit_github or section.get("repository") or env.get(ENV_SINK) == "github":
            from otel_autoheal.sinks.github import create_github_sink

            return create_github_sink(config, store, metrics)
    return LocalSink()
