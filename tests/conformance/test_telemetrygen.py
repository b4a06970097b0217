"""telemetrygen (collector-contrib): plain error spans and exception logs, over gRPC and HTTP."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from conformance_support import CACHE, TRACE_WAIT, Checks, RenderedIssue, require

TELEMETRYGEN = CACHE / "bin" / "telemetrygen-v0.161.0"


def telemetrygen(autoheal: Any, protocol: str, *args: str) -> None:
    """Run telemetrygen to completion against the service (it has flags, not OTEL_* variables)."""
    binary = require(TELEMETRYGEN, "telemetrygen")
    if protocol == "grpc":
        target = ["--otlp-endpoint", autoheal.grpc_endpoint, "--otlp-insecure"]
    else:
        target = ["--otlp-endpoint", autoheal.http_endpoint.removeprefix("http://"), "--otlp-insecure", "--otlp-http"]
    result = subprocess.run([str(binary), *args, *target, "--rate", "0"], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_telemetrygen_error_spans_and_logs(autoheal_factory: Callable[..., Any], protocol: str) -> None:
    """Error spans without exceptions and exception logs become one group per cause with exact counts."""
    autoheal = autoheal_factory(trace_wait=TRACE_WAIT)
    telemetrygen(autoheal, protocol, "traces", "--traces", "3", "--status-code", "Error", "--service", "tg-checkout")
    telemetrygen(autoheal, protocol, "traces", "--traces", "1", "--status-code", "Error", "--service", "tg-inventory")
    telemetrygen(autoheal, protocol, "logs", "--logs", "3", "--severity-text", "ERROR", "--severity-number", "17",
                 "--body", "payment gateway timed out", "--service", "tg-payments",
                 "--telemetry-attributes", 'exception.type="GatewayTimeout"',
                 "--telemetry-attributes", 'exception.message="payment gateway timed out"')
    issues = autoheal.wait_for_issues(lambda found: sum(i["count"] for i in found) >= 7, timeout=120)
    assert autoheal._healthy(), "the service stopped answering /healthz"
    by_service = {i["service"]: RenderedIssue.from_json(i) for i in issues}
    assert sorted((i["service"], i["count"]) for i in issues) == [
        ("tg-checkout", 3), ("tg-inventory", 1), ("tg-payments", 3)], [(i["service"], i["title"], i["count"]) for i in issues]

    checks = Checks()
    spans = by_service["tg-checkout"]
    # Nothing varies across the three traces (telemetrygen names every server span okey-dokey-0).
    checks.check("okey-dokey-0 failed" in spans.title, f"span group title {spans.title!r} masks a constant span name")
    checks.check(spans.context().get("span", "").startswith("okey-dokey-0"), f"span context {spans.context()}")
    logs = by_service["tg-payments"]
    checks.check(logs.title == "[autoheal] GatewayTimeout: payment gateway timed out", f"log group title {logs.title!r}")
    checks.raise_if_failed("\n\n".join(f"{i.title}\n{i.body}" for i in by_service.values()))
