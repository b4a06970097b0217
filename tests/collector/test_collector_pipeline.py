"""End to end: OTel SDK -> otelcol-autoheal -> (Jaeger, an OTLP receiver standing in for otel-autoheal)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from collector_stack import Binaries, Collector, Jaeger, start_collector, wait_for
from otlp_sink import OtlpSink, attrs
from scenario import SECRETS, Scenario, send_scenario

DEADLINE_S = 90.0


@pytest.fixture(scope="module")
def collector(
    collector_binaries: Binaries,
    jaeger: Jaeger,
    autoheal_sink: OtlpSink,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Collector]:
    instance = start_collector(
        collector_binaries.otelcol,
        tmp_path_factory.mktemp("otelcol"),
        autoheal_endpoint=autoheal_sink.endpoint,
        jaeger_endpoint=jaeger.otlp_grpc_endpoint,
    )
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def sent(collector: Collector) -> Scenario:
    return send_scenario(collector.grpc_endpoint)


def _wait_whole_trace(sink: OtlpSink, collector: Collector, sc: Scenario, trace_id: str) -> None:
    def probe() -> bool:
        collector.process.check_alive()
        return {s.span.name for s in sink.spans(trace_id)} >= sc.span_names[trace_id]

    wait_for(
        probe,
        timeout=DEADLINE_S,
        what=f"all spans of trace {trace_id} at the otel-autoheal stand-in",
        on_timeout=collector.process.log_tail,
    )


def test_error_trace_arrives_whole(sent: Scenario, autoheal_sink: OtlpSink, collector: Collector) -> None:
    """A trace with a failed span reaches otel-autoheal with every span, the successful ones too."""
    _wait_whole_trace(autoheal_sink, collector, sent, sent.error_trace)
    spans = {s.span.name: s for s in autoheal_sink.spans(sent.error_trace)}
    assert set(spans) == sent.span_names[sent.error_trace]
    assert spans["call-api"].span.status.code == 2  # STATUS_CODE_ERROR
    assert spans["load-config"].span.status.code != 2
    events = [e for e in spans["call-api"].span.events if e.name == "exception"]
    assert events and "exception.stacktrace" in attrs(events[0].attributes)
    assert spans["cli.run"].resource["autoheal.source"] == "cli"


def test_exception_event_trace_arrives(sent: Scenario, autoheal_sink: OtlpSink, collector: Collector) -> None:
    """A trace whose only sign of trouble is an `exception` span event is kept too."""
    _wait_whole_trace(autoheal_sink, collector, sent, sent.exception_event_trace)
    assert all(s.span.status.code != 2 for s in autoheal_sink.spans(sent.exception_event_trace))


def test_successful_traces_never_reach_autoheal(
    sent: Scenario, autoheal_sink: OtlpSink, collector: Collector
) -> None:
    """Traces without errors are dropped by tail sampling once their decision is taken."""
    wait_for(
        lambda: collector.traces_not_sampled() >= len(sent.ok_traces),
        timeout=DEADLINE_S,
        what=f"{len(sent.ok_traces)} 'not sampled' tail-sampling decisions",
        on_timeout=collector.metrics_text,
    )
    # The kept traces were sent before the dropped ones and decided no later, so once they are in the
    # sink anything that was going to be forwarded has been.
    _wait_whole_trace(autoheal_sink, collector, sent, sent.error_trace)
    _wait_whole_trace(autoheal_sink, collector, sent, sent.exception_event_trace)
    leaked = autoheal_sink.trace_ids() & set(sent.ok_traces)
    assert not leaked, f"successful traces reached otel-autoheal: {leaked}"
    assert autoheal_sink.trace_ids() == {sent.error_trace, sent.exception_event_trace}


def test_all_logs_arrive(sent: Scenario, autoheal_sink: OtlpSink, collector: Collector) -> None:
    """Every log record reaches otel-autoheal with its trace id, from successful traces too."""

    def probe() -> bool:
        collector.process.check_alive()
        return {r.record.body.string_value for r in autoheal_sink.logs()} >= set(sent.log_bodies)

    wait_for(probe, timeout=DEADLINE_S, what="all log records", on_timeout=collector.process.log_tail)
    by_body = {r.record.body.string_value: r for r in autoheal_sink.logs()}
    for body, trace_id in sent.log_bodies.items():
        got = by_body[body].trace_id.strip("0")  # no trace: empty or all-zero id
        assert got == trace_id.strip("0"), body
    failed = by_body["deploy failed"].attributes
    assert failed["exception.type"].endswith("_ApiError")
    assert "Traceback" in failed["exception.stacktrace"]


def _all_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _all_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _all_strings(v)


def test_secrets_in_attributes_are_redacted(
    sent: Scenario, autoheal_sink: OtlpSink, collector: Collector
) -> None:
    """Tokens, keys, JWTs, card numbers and password-named attributes never leave the collector."""
    _wait_whole_trace(autoheal_sink, collector, sent, sent.error_trace)
    wait_for(
        lambda: "calling api" in {r.record.body.string_value for r in autoheal_sink.logs()},
        timeout=DEADLINE_S,
        what="the log record carrying secrets",
    )
    spans = {s.span.name: s.span for s in autoheal_sink.spans(sent.error_trace)}
    seen: list[str] = []
    for span in spans.values():
        seen += _all_strings(attrs(span.attributes))
        for event in span.events:
            seen += _all_strings(attrs(event.attributes))
    for record in autoheal_sink.logs():
        seen += _all_strings(record.attributes)
    blob = "\n".join(seen)
    for name, secret in SECRETS.items():
        assert secret not in blob, f"{name} secret leaked"
    load = attrs(spans["load-config"].attributes)
    assert load["db.password"] == "****"  # masked whole: its key matches
    assert load["config.note"] == "loaded key **** from env"  # only the match is masked
    message = attrs(next(e for e in spans["call-api"].events if e.name == "exception").attributes)
    assert message["exception.message"] == "401 for token ****"
    logged = next(r for r in autoheal_sink.logs() if r.record.body.string_value == "calling api")
    assert logged.attributes["payment.card"] == "card ****"


def _jaeger_spans(body: bytes) -> list[dict[str, Any]]:
    result = json.loads(body)["result"]
    return [
        span
        for rs in result.get("resourceSpans", [])
        for ss in rs.get("scopeSpans", [])
        for span in ss.get("spans", [])
    ]


def test_jaeger_receives_every_trace(sent: Scenario, jaeger: Jaeger, collector: Collector) -> None:
    """Jaeger's /api/v3/traces/{id} returns the error traces and the successful ones, whole."""
    for trace_id in [sent.error_trace, sent.exception_event_trace, *sent.ok_traces]:

        def probe(trace_id: str = trace_id) -> list[dict[str, Any]] | None:
            status, body = jaeger.get_trace(trace_id)
            if status != 200:
                return None
            spans = _jaeger_spans(body)
            return spans if {s["name"] for s in spans} >= sent.span_names[trace_id] else None

        spans = wait_for(
            probe,
            timeout=DEADLINE_S,
            what=f"trace {trace_id} in Jaeger",
            on_timeout=lambda: collector.process.log_tail() + "\n" + jaeger.process.log_tail(),
        )
        assert {s["traceId"] for s in spans} == {trace_id}
    _status, body = jaeger.get_trace(sent.error_trace)
    assert SECRETS["aws"] not in body.decode()
    assert re.search(r"loaded key \*\*\*\* from env", body.decode())
