"""Issue sinks: where grouped errors end up."""

from __future__ import annotations

import os
from collections.abc import Mapping

from otel_autoheal.sinks.base import Sink
from otel_autoheal.sinks.local import LocalSink
from otel_autoheal.sinks.memory import MemorySink

__all__ = ["LocalSink", "MemorySink", "Sink", "github_available"]


def github_available(config: object, env: Mapping[str, str] | None = None) -> bool:
    """True when a GitHub repository and a token source are configured."""
    env = os.environ if env is None else env
    section = getattr(config, "github", {}) or {}
    repo = section.get("repository") or env.get("GITHUB_REPOSITORY")
    token = env.get("GITHUB_TOKEN") or env.get("GH_TOKEN") or section.get("token_command")
    return bool(repo and token)
