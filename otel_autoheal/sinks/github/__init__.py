"""The GitHub issue sink: PyGithub over a durable outbox, with budgets and an optional Copilot hand-off.

Chosen when ``GITHUB_REPOSITORY`` and a token (``GITHUB_TOKEN``, ``GH_TOKEN`` or ``gh auth token``)
are configured::

    sink = GitHubSink.from_env(store)          # raises SinkConfigError naming the bad key
"""

from otel_autoheal.sinks.github.config import GitHubConfig, github_configured
from otel_autoheal.sinks.github.sink import GitHubSink
from otel_autoheal.sinks.github.wiring import create_github_sink, offline_status

__all__ = ["GitHubConfig", "GitHubSink", "create_github_sink", "github_configured", "offline_status"]
