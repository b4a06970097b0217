"""The harness of the GitHub sink tests: a real store and sink fed real GroupUpdates."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from gh_occurrences import fingerprint, make_occurrence  # noqa: E402,F401
from otel_autoheal.model import GroupUpdate  # noqa: E402
from otel_autoheal.sinks.github import GitHubConfig, GitHubSink  # noqa: E402
from otel_autoheal.state.sqlite import SQLiteStore  # noqa: E402
from tests.github_standin.server import GitHubStandin  # noqa: E402

#: Settings that keep tests quick; the default spacing has its own test.
FAST = {
    "min_write_interval": 0.0,
    "comment_interval": 0.0,
    "state_check_interval": 0.0,
    "backoff_base": 0.1,
    "backoff_max": 0.5,
    "request_timeout": 5.0,
}


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class Harness:
    """A real SQLiteStore and GitHubSink pointed at the stand-in over HTTP."""

    def __init__(self, standin: GitHubStandin, state_dir: Path) -> None:
        self.standin = standin
        self.state_dir = state_dir
        self.store = SQLiteStore.in_dir(state_dir)
        self.sinks: list[GitHubSink] = []
        self.sink: GitHubSink | None = None

    def config(self, **overrides: Any) -> GitHubConfig:
        return GitHubConfig.from_env(self.standin.env(), {**FAST, **overrides}, use_gh_cli=False)

    def start(self, **overrides: Any) -> GitHubSink:
        sink = GitHubSink(self.store, self.config(**overrides))
        self.sinks.append(sink)
        self.sink = sink
        return sink

    def emit(self, fp: str, **kwargs: Any) -> GroupUpdate:
        occ = make_occurrence(fp, **kwargs)
        update = self.store.record(occ, lambda stats: (occ.title, occ.body))
        assert self.sink is not None
        self.sink.handle(update)
        return update

    def status(self) -> dict[str, Any]:
        assert self.sink is not None
        return self.sink.status()

    def wait_idle(self, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the outbox has nothing pending that is due."""
        return wait_for(lambda: self.status() if self.status()["outbox"]["pending"] == 0 else None,
                        timeout, "an empty outbox")

    def requests(self, method: str, pattern: str) -> list[Any]:
        import re

        return [e for e in self.standin.log() if e.method == method and re.search(pattern, e.path)]

    def close(self) -> None:
        for s in self.sinks:
            s.close(5.0)
        self.store.close()


