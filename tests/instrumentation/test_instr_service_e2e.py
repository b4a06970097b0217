"""The examples against the real otel-autoheal service: errors become issues with stack, context and logs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from _pyinstr_helpers import EXAMPLES, PYTHON, Proc, base_env, free_port
from test_instr_mcp import PARENT_ID, TRACE_ID, call


def _cli(args: list[str], endpoint: str, spool: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, str(EXAMPLES / "cli" / "app.py"), *args],
        env=base_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, AUTOHEAL_SPOOL_DIR=str(spool), **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_failing_cli_command_becomes_one_issue(autoheal: Any, tmp_path: Path) -> None:
    """A failing CLI run produces one issue carrying its stack, scrubbed argv and preceding log lines."""
    proc = _cli(["sync", "--token", "hunter2hunter2", "--fail"], autoheal.http_endpoint, tmp_path / "spool")
    assert proc.returncode == 1
    (issue,) = autoheal.wait_for_issues(1)
    assert issue["source"] == "cli"
    assert issue["service"] == "exampleapp"
    assert issue["exception_type"].endswith("ValueError")
    body = issue["body"]
    assert "_parse_manifest" in body and "int(count)" in body
    assert "sync" in body and "--fail" in body
    assert "hunter2hunter2" not in body
    assert "starting sync from" in body and "has no checksum, continuing" in body
    assert len(issue["trace_ids"]) == 1 and issue["trace_ids"][0] in body


def test_spooled_cli_error_reaches_the_service_on_a_later_run(autoheal: Any, tmp_path: Path) -> None:
    """An error spooled while the endpoint was down becomes an issue after the next run of the CLI."""
    spool = tmp_path / "spool"
    down = _cli(["sync", "--fail"], f"http://127.0.0.1:{free_port()}", spool)
    assert down.returncode == 1
    assert list(spool.glob("*.otlp"))
    later = _cli(["status"], autoheal.http_endpoint, spool)
    assert later.returncode == 0
    (issue,) = autoheal.wait_for_issues(1)
    assert "_parse_manifest" in issue["body"]


def test_failing_mcp_tool_becomes_one_issue_in_the_callers_trace(autoheal: Any, processes: list[Proc]) -> None:
    """divide(1, 0) via the real mcp client: one issue with the tool's stack, arguments and the caller's trace."""
    proc = Proc(
        [PYTHON, str(EXAMPLES / "mcp_server" / "server.py"), "--transport", "http", "--port", "0"],
        env=base_env(OTEL_EXPORTER_OTLP_ENDPOINT=autoheal.http_endpoint),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    processes.append(proc)
    assert proc.popen.stdout is not None
    url = json.loads(proc.popen.stdout.readline())["url"]
    result = call(url, "divide", {"a": 1, "b": 0}, {"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    assert result.is_error is True

    issues = autoheal.wait_for_issues(lambda found: any(TRACE_ID in i["trace_ids"] for i in found))
    (issue,) = [i for i in issues if TRACE_ID in i["trace_ids"]]
    assert issue["source"] == "mcp"
    assert issue["exception_type"].endswith("ZeroDivisionError")
    body = issue["body"]
    assert "_ratio" in body and "a / b" in body
    assert "divide" in body and '"b": 0' in body
    assert "computing ratio of 1.0 and 0.0" in body


def test_cli_sends_configured_headers_to_a_token_protected_service(autoheal_factory: Any, tmp_path: Path) -> None:
    """OTEL_EXPORTER_OTLP_HEADERS carries the ingest token; without it the error stays spooled."""
    service = autoheal_factory(env={"AUTOHEAL_INGEST_TOKEN": "t0ken-for-tests"})
    spool = tmp_path / "spool"
    refused = _cli(["sync", "--fail"], service.http_endpoint, spool)
    assert refused.returncode == 1
    assert len(list(spool.glob("*.otlp"))) == 1  # 401: kept for a later run

    accepted = _cli(
        ["sync", "--fail"],
        service.http_endpoint,
        spool,
        OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer%20t0ken-for-tests",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=ci",
    )
    assert accepted.returncode == 1
    (issue,) = service.wait_for_issues(lambda found: found and found[0]["count"] >= 2)
    assert "ci" in issue["body"]
    assert list(spool.glob("*.otlp")) == []
