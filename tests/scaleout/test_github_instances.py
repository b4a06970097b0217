"""Three ``otel-autoheal serve`` instances sharing PostgreSQL file to GitHub (the stand-in) together."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import REPO, AutohealProcess
from tests.github_standin.fixture import github_openapi, github_standin  # noqa: F401 - fixtures used below
from tests.github_standin.server import GitHubStandin
from tests.otlp_payloads import new_span_id, new_trace_id, now_nanos, post, span, traces_payload
from tests.polling import wait_for
from tests.postgres_server import PostgresServer

GROUPS = 4
#: Occurrences per group: past the milestone of 10, so each issue gets exactly one comment.
EACH = 12
MIN_WRITE_INTERVAL = 1.0
DEADLINE_S = 240.0
_FINGERPRINT = re.compile(r"fingerprint=([0-9a-f]+)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _failing_trace(bug: int, order: int) -> dict[str, Any]:
    trace_id, root, child = new_trace_id(), new_span_id(), new_span_id()
    start = now_nanos()
    stack = ("Traceback (most recent call last):\n"
             '  File "/srv/shop/orders.py", line 12, in handle\n    step()\n'
             f'  File "/srv/shop/bugs/bug{bug}.py", line 7, in bug_{bug}\n'
             f'    raise ValueError("bug {bug} broke order {order}")\n'
             f"ValueError: bug {bug} broke order {order}\n")
    spans = [
        span(trace_id, root, "POST /orders", error=True, kind=2, start=start),
        span(trace_id, child, f"bug_{bug}", parent=root, start=start + 1000,
             exception={"type": "ValueError", "message": f"bug {bug} broke order {order}", "stacktrace": stack}),
    ]
    return traces_payload(spans, {"service.name": "shop", "service.version": "1.0.0"})


@pytest.fixture
def instances(pg_server: PostgresServer, github_standin: GitHubStandin, tmp_path: Path) -> Iterator[list[AutohealProcess]]:
    url = pg_server.new_database()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GH_", "AUTOHEAL_", "OTEL_"))}
    base.update(github_standin.env())
    base.update({
        "AUTOHEAL_DATABASE_URL": url,
        "AUTOHEAL_GITHUB_MIN_WRITE_INTERVAL": str(MIN_WRITE_INTERVAL),
        "AUTOHEAL_GITHUB_COMMENT_INTERVAL": "0",
        "AUTOHEAL_GITHUB_STATE_CHECK_INTERVAL": "3600",
        "AUTOHEAL_GITHUB_CLAIM_LEASE": "3",
        "AUTOHEAL_GITHUB_TIMEOUT": "60",
        "AUTOHEAL_GITHUB_BACKOFF_BASE": "0.2",
        "AUTOHEAL_GITHUB_BACKOFF_MAX": "1",
    })
    procs: list[AutohealProcess] = []
    try:
        for i in range(3):
            state = tmp_path / f"node{i}"
            state.mkdir()
            env = {**base, "AUTOHEAL_INSTANCE_ID": f"node{i}"}
            procs.append(AutohealProcess(state, ["--trace-wait", "1", "--otlp-grpc", f"127.0.0.1:{_free_port()}"],
                                         env).start())
        yield procs
    finally:
        for proc in procs:
            proc.stop()


def _database(procs: list[AutohealProcess]) -> str:
    return procs[0].env["AUTOHEAL_DATABASE_URL"]


def _outbox(url: str, where: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT id, kind, claimed_by, attempts FROM github_outbox WHERE {where}").fetchall()


def _issues(url: str) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "otel_autoheal", "issues", "--json", "--database-url", url],
                         capture_output=True, check=True, cwd=REPO, timeout=60)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_three_instances_file_each_group_once_through_a_crash(
    instances: list[AutohealProcess], github_standin: GitHubStandin
) -> None:
    """The same errors sent to 3 instances; the one holding a create in flight is SIGKILLed: the others finish
    its work after its lease, one issue and one milestone comment per group, writes spaced across instances."""
    url = _database(instances)
    hang = github_standin.fault("hang", count=1, seconds=120, process_first=True, methods=["POST"],
                                path_pattern=r"/issues$")
    for order in range(GROUPS * EACH):
        payload = _failing_trace(order % GROUPS, order)
        for proc in instances:  # every instance receives every trace: each occurrence must count once
            status, _ = post(f"{proc.http_endpoint}/v1/traces", payload)
            assert status == 200

    def stuck() -> list[tuple[Any, ...]] | None:
        """The one create in flight once the hang caught one (others in flight answer within moments)."""
        rows = _outbox(url, "kind = 'create' AND state = 'pending' AND attempts > 0")
        return rows if hang.count == 0 and len(rows) == 1 else None

    ((_, _, holder, _),) = wait_for(stuck, DEADLINE_S, 0.05, "a create stuck in flight at GitHub")
    victim = next(p for p in instances if p.env["AUTOHEAL_INSTANCE_ID"] == holder)
    victim.stop(signal.SIGKILL)
    survivors = [p for p in instances if p is not victim]
    # The hung create reached GitHub before the kill: whoever takes the item over must find it, not file again.
    assert len(github_standin.issues()) >= 1

    def finished() -> list[dict[str, Any]] | None:
        if _outbox(url, "state <> 'done'"):
            return None
        issues = _issues(url)
        done = len(issues) == GROUPS and all(i["github_issue"] for i in issues)
        return issues if done else None

    try:
        groups = wait_for(finished, DEADLINE_S, 0.25, "every outbox item done by the surviving instances")
    except AssertionError as exc:
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT id, kind, state, claimed_by, lease_until, attempts, not_before, last_error"
                                " FROM github_outbox WHERE state <> 'done'").fetchall()
        raise AssertionError(f"{exc}; unfinished outbox items: {rows}") from None
    assert sorted(g["count"] for g in groups) == [EACH] * GROUPS, "an occurrence was counted twice or lost"

    filed = Counter(m.group(1) for i in github_standin.issues() if (m := _FINGERPRINT.search(i["body"] or "")))
    assert len(filed) == GROUPS and set(filed.values()) == {1}, f"issues per group: {filed}"
    creates = [e for e in github_standin.log() if e.method == "POST" and e.path.endswith("/issues") and not e.fault]
    assert len(creates) == GROUPS - 1, "a create was sent again instead of the stuck one being found"
    comments = Counter(e.path for e in github_standin.writes() if e.path.endswith("/comments"))
    assert len(comments) == GROUPS and set(comments.values()) == {1}, f"milestone comments per issue: {comments}"

    starts = sorted(e.start for e in github_standin.writes())
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # Spacing is kept from the previous write's start by whichever instance sends the next one; a
    # quarter of the interval leaves room for the time a request spends reaching the stand-in.
    assert min(gaps) >= 0.75 * MIN_WRITE_INTERVAL, f"writes closer than the interval across instances: {gaps}"
    assert all(p.proc is not None and p.proc.poll() is None for p in survivors)
