"""Runs a GitHubSink in its own process for the crash tests.

Usage: python gh_sink_process.py STATE_DIR GROUPS PER_GROUP
GITHUB_* / AUTOHEAL_GITHUB_* come from the environment. Prints ``QUEUED`` once every occurrence is
recorded and handed to the sink, then keeps the worker running until the outbox is empty
(prints ``DRAINED`` and exits 0) or the process is killed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]

from gh_occurrences import fingerprint, make_occurrence  # noqa: E402
from otel_autoheal.sinks.github import GitHubSink  # noqa: E402
from otel_autoheal.state.sqlite import SQLiteStore  # noqa: E402


def main() -> int:
    state_dir, groups, per_group = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    store = SQLiteStore.in_dir(state_dir)
    sink = GitHubSink.from_env(store)
    for _ in range(per_group):
        for g in range(groups):
            occ = make_occurrence(fingerprint(f"crash{g}"))
            sink.handle(store.record(occ, lambda stats, occ=occ: (occ.title, occ.body)))
    print("QUEUED", flush=True)
    while sink.status()["outbox"]["pending"]:
        time.sleep(0.05)
    print("DRAINED", flush=True)
    sink.close()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
