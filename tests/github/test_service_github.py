"""The real ``otel-autoheal serve`` subprocess with GITHUB_* pointed at the stand-in."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from gh_harness import ROOT, wait_for
from otlp_payloads import new_span_id, new_trace_id, post, span, traces_payload
from tests.github_standin.server import GitHubStandin

STACKS = {
    "ZeroDivisionError": (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/tools.py", line 40, in divide_tool\n    return _divide(a, b)\n'
        '  File "/srv/app/tools.py", line 12, in _divide\n    return a / b\n'
        "ZeroDivisionError: division by zero\n"
    ),
    "KeyError": (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/orders.py", line 7, in load_order\n    return ORDERS[order_id]\n'
        "KeyError: 'A-17'\n"
    ),
}
BROWSER_STACK = "TypeError: x is undefined\n    at render (http://127.0.0.1:9000/app.js:10:5)"


def _env(standin: GitHubStandin, **extra: str) -> dict[str, str]:
    return {
        **standin.env(),
        "AUTOHEAL_GITHUB_MIN_WRITE_INTERVAL": "0",
        "AUTOHEAL_GITHUB_COMMENT_INTERVAL": "0",
        "AUTOHEAL_GITHUB_STATE_CHECK_INTERVAL": "0",
        **extra,
    }


def _send(svc: Any, exc_type: str, stack: str, source: str, version: str = "1.0.0") -> None:
    resource = {"service.name": "shop", "service.version": version, "autoheal.source": source}
    exc = {"type": exc_type, "message": stack.strip().splitlines()[-1], "stacktrace": stack}
    payload = traces_payload([span(new_trace_id(), new_span_id(), "tools/call", exception=exc)], resource)
    status, body = post(f"{svc.http_endpoint}/v1/traces", payload)
    assert status == 200, body


def test_service_files_one_issue_per_group_with_milestones_and_handoff(
    github_standin: GitHubStandin, autoheal_factory: Callable[..., Any]
) -> None:
    """Twelve traces of each of two CLI errors and one browser error become three issues; only CLI is handed off."""
    svc = autoheal_factory(env=_env(github_standin, AUTOHEAL_GITHUB_HANDOFF="copilot",
                                    AUTOHEAL_GITHUB_HANDOFF_MIN_OCCURRENCES="3"))
    for _ in range(12):
        for exc_type, stack in STACKS.items():
            _send(svc, exc_type, stack, "cli")
        _send(svc, "TypeError", BROWSER_STACK, "browser")
    svc.wait_for_issues(lambda issues: sum(i["count"] for i in issues) >= 36, timeout=90)
    local = svc.issues()
    assert len(local) == 3

    def settled() -> bool:
        issues = github_standin.issues()
        return len(issues) == 3 and all(len(i["comments"]) == 1 for i in issues) and sum(
            bool(i["assignees"]) for i in issues) == 2
    wait_for(settled, timeout=90, what="three issues, their milestone comments and two hand-offs")
    remote = github_standin.issues()
    for group in local:
        (issue,) = [i for i in remote if f"autoheal:fingerprint={group['fingerprint']}" in (i["body"] or "")]
        assert issue["title"] == group["title"]
        assert f"source:{group['source']}" in issue["labels"] and "autoheal" in issue["labels"]
        assert "reached 10 occurrences" in issue["comments"][0]
        assert (issue["assignees"] == []) == (group["source"] == "browser")
    numbers = {i["number"] for i in remote}
    assert {group["github_issue"] for group in svc.issues()} == numbers  # `issues --json` links each group
    status = subprocess.run(
        [sys.executable, "-m", "otel_autoheal", "status", "--state", str(svc.state_dir), "--json"],
        capture_output=True, text=True, env={**svc.env}, cwd=ROOT, timeout=60,
    )
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["sink"] == "github" and info["repo"] == github_standin.repository
    assert info["token_source"] == "GITHUB_TOKEN" and info["issues_filed"] == 3
    assert github_standin.token not in status.stdout
    assert github_standin.token not in svc.log_text()
    metrics = svc.metrics()
    assert "autoheal_github_issues 3" in metrics


def test_service_outage_then_recovery(github_standin: GitHubStandin, autoheal_factory: Callable[..., Any]) -> None:
    """Errors that arrive while GitHub is down are filed once it is back, with no duplicates."""
    github_standin.outage()
    svc = autoheal_factory(env=_env(github_standin, AUTOHEAL_GITHUB_BACKOFF_BASE="0.2",
                                    AUTOHEAL_GITHUB_BACKOFF_MAX="1"))
    for exc_type, stack in STACKS.items():
        _send(svc, exc_type, stack, "cli")
    svc.wait_for_issues(2)
    wait_for(lambda: sum(e.status == 502 for e in github_standin.log()) >= 3, what="failed attempts")
    assert github_standin.issues() == []
    github_standin.end_outage()
    wait_for(lambda: len(github_standin.issues()) == 2, timeout=60, what="filing after the outage")
    svc.stop()
    assert len(github_standin.issues()) == 2
