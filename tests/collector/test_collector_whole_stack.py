"""The whole stack: OTel SDK -> otelcol-autoheal -> (Jaeger, the real otel-autoheal service) -> issues."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from collector_stack import Binaries, Jaeger, start_collector, wait_for
from scenario import SECRETS, send_scenario

DECISION_WAIT_S = 2


def test_error_traces_become_issues_through_the_collector(
    collector_binaries: Binaries,
    jaeger: Jaeger,
    autoheal_factory: Callable[..., Any],  # tests/conftest.py: the real service on free ports
    tmp_path: Path,
) -> None:
    """Error traces sent through the collector become scrubbed issues; successful ones do not."""
    # Logs reach otel-autoheal at once, the spans of a kept trace only after the tail-sampling
    # decision: the service must wait longer than that or it processes the trace without its spans.
    autoheal = autoheal_factory(trace_wait=DECISION_WAIT_S + 4)
    collector = start_collector(
        collector_binaries.otelcol,
        tmp_path,
        autoheal_endpoint=autoheal.grpc_endpoint,
        jaeger_endpoint=jaeger.otlp_grpc_endpoint,
        env={"OTELCOL_TAIL_DECISION_WAIT": f"{DECISION_WAIT_S}s"},
    )
    try:
        sent = send_scenario(collector.grpc_endpoint)
        wanted = {sent.error_trace, sent.exception_event_trace}

        def has_both(issues: list[dict[str, Any]]) -> bool:
            return wanted <= {t for issue in issues for t in issue["trace_ids"]}

        issues = autoheal.wait_for_issues(has_both, timeout=120)
        seen_traces = {t for issue in issues for t in issue["trace_ids"]}
        assert seen_traces == wanted, "only the error traces may reach otel-autoheal"
        deploy = next(i for i in issues if sent.error_trace in i["trace_ids"])
        assert deploy["exception_type"].endswith("_ApiError")
        assert "calling api" in deploy["body"]  # a log that preceded the error
        assert deploy["count"] == 1, "spans and logs of one trace must be processed together"
        for name, secret in SECRETS.items():
            assert secret not in deploy["body"], f"{name} secret reached the issue"

        # Jaeger has the successful traces that otel-autoheal never saw.
        def in_jaeger() -> bool:
            return all(jaeger.get_trace(t)[0] == 200 for t in sent.ok_traces)

        wait_for(in_jaeger, timeout=90, what="the successful traces in Jaeger")
    finally:
        collector.stop()
