"""The in-process exporters next to an application's existing OTel setup (real SDK, real store)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from inprocess_support import BlockingSink, FailingSink, _isolated_env, blocking_sink, read_issues  # noqa: F401
from otel_autoheal.config import source_of
from otel_autoheal.errors import ConfigError
from otel_autoheal.exporters import AutohealEngine, AutohealLogExporter, AutohealSpanExporter, default_trace_wait
from polling import wait_for

RESOURCE = Resource.create({"service.name": "shop", "service.version": "2.0.0"})


def _reserve(cart: int) -> None:
    raise KeyError(f"sku-{cart}")


def _checkout(tracer, otel_logger, cart: int) -> None:
    with tracer.start_as_current_span("checkout"):
        otel_logger.emit(body=f"loading cart {cart}", severity_number=SeverityNumber.INFO, severity_text="INFO")
        with tracer.start_as_current_span("load"):
            pass
        otel_logger.emit(body=f"reserving stock {cart}", severity_number=SeverityNumber.INFO, severity_text="INFO")
        with tracer.start_as_current_span("reserve"):
            _reserve(cart)


@pytest.fixture
def providers() -> Iterator[list]:
    """Providers created by a test; all are shut down at teardown even when the test fails."""
    created: list = []
    yield created
    for provider in created:
        provider.shutdown()


def test_existing_exporter_still_gets_every_span_and_issue_is_filed(tmp_path: Path, providers: list) -> None:
    """Added next to an existing exporter, ours files the issue with its logs while theirs still receives everything."""
    theirs_spans, theirs_logs = InMemorySpanExporter(), InMemoryLogRecordExporter()
    span_exporter = AutohealSpanExporter(state_dir=tmp_path, trace_wait=0.5)
    log_exporter = AutohealLogExporter(state_dir=tmp_path)
    assert span_exporter.engine is log_exporter.engine is not None
    tracer_provider = TracerProvider(resource=RESOURCE)
    tracer_provider.add_span_processor(SimpleSpanProcessor(theirs_spans))
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter, schedule_delay_millis=100))
    logger_provider = LoggerProvider(resource=RESOURCE)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(theirs_logs))
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter, schedule_delay_millis=100))
    providers += [tracer_provider, logger_provider]
    tracer, otel_logger = tracer_provider.get_tracer("shop"), logger_provider.get_logger("shop")

    for _ in range(3):  # traces without errors are not issues
        with tracer.start_as_current_span("browse"), tracer.start_as_current_span("render"):
            otel_logger.emit(body="rendering", severity_number=SeverityNumber.INFO)
    with pytest.raises(KeyError):
        _checkout(tracer, otel_logger, 42)

    issues = wait_for(lambda: read_issues(tmp_path), timeout=30, message="an issue from the in-process exporter")
    assert len(issues) == 1
    issue = issues[0]
    assert issue["exception_type"] == "KeyError" and issue["service"] == "shop" and issue["count"] == 1
    body = issue["body"]
    assert body.index("loading cart 42") < body.index("reserving stock 42")
    assert "rendering" not in body and "_reserve" in body

    failing = [s for s in theirs_spans.get_finished_spans() if s.name == "checkout"]
    assert issue["trace_ids"] == [f"{failing[0].context.trace_id:032x}"]
    tracer_provider.shutdown()
    logger_provider.shutdown()
    # Their exporter saw every span and log record; the final flush did not count the error twice.
    assert len(theirs_spans.get_finished_spans()) == 3 * 2 + 3
    assert len(theirs_logs.get_finished_logs()) == 3 + 2
    assert [i["count"] for i in read_issues(tmp_path)] == [1]
    assert span_exporter.engine is None or span_exporter.engine.closed


def test_trace_split_across_providers_is_joined_at_shutdown(tmp_path: Path) -> None:
    """Spans and logs buffered in two providers meet even when the tracer provider shuts down first."""
    span_exporter = AutohealSpanExporter(state_dir=tmp_path)
    log_exporter = AutohealLogExporter(state_dir=tmp_path)
    engine = span_exporter.engine
    assert engine is not None and engine.config.trace_wait == default_trace_wait({})
    tracer_provider = TracerProvider(resource=RESOURCE)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    logger_provider = LoggerProvider(resource=RESOURCE)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter))
    with pytest.raises(KeyError):
        _checkout(tracer_provider.get_tracer("shop"), logger_provider.get_logger("shop"), 7)
    tracer_provider.shutdown()
    assert not engine.closed  # the log exporter still uses it
    logger_provider.shutdown()
    assert engine.closed
    issues = read_issues(tmp_path)
    assert [i["count"] for i in issues] == [1]
    assert "loading cart 7" in issues[0]["body"] and "reserving stock 7" in issues[0]["body"]


def test_one_engine_per_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No-argument exporters (what the SDK's entry points build) share the engine of AUTOHEAL_STATE_DIR or an explicit one."""
    monkeypatch.setenv("AUTOHEAL_STATE_DIR", str(tmp_path / "a"))
    spans, logs = AutohealSpanExporter(), AutohealLogExporter()
    other = AutohealSpanExporter(state_dir=tmp_path / "b")
    explicit = AutohealEngine(state_dir=tmp_path / "c")
    with_engine = AutohealLogExporter(explicit)
    finds_explicit = AutohealSpanExporter(state_dir=tmp_path / "c")
    try:
        assert finds_explicit.engine is explicit
        assert spans.engine is logs.engine
        assert spans.engine is not None and spans.engine.state_dir == tmp_path / "a"
        assert other.engine is not spans.engine
        assert with_engine.engine is explicit
    finally:
        for exporter in (spans, logs, other, with_engine, finds_explicit):
            exporter.shutdown()
    assert explicit.closed
    assert other.engine is not None and other.engine.closed


def test_settings_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Explicit arguments beat AUTOHEAL_* env vars, which beat the in-process defaults."""
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "2000")
    default = AutohealEngine(state_dir=tmp_path / "d")
    monkeypatch.setenv("AUTOHEAL_TRACE_WAIT", "7")
    monkeypatch.setenv("AUTOHEAL_EXPORTER_QUEUE_SIZE", "123")
    from_env = AutohealEngine(state_dir=tmp_path / "e")
    explicit = AutohealEngine(state_dir=tmp_path / "f", trace_wait=0.25, queue_size=5)
    try:
        assert default.config.trace_wait == 3.0  # 2 s batch delay + 1 s
        assert (from_env.config.trace_wait, from_env.queue_size) == (7.0, 123)
        assert (explicit.config.trace_wait, explicit.queue_size) == (0.25, 5)
    finally:
        for engine in (default, from_env, explicit):
            engine.shutdown()


def test_engine_settings_come_from_the_service_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine reads the config file through the service's loader: its provenance decides the trace_wait
    default, and a wrongly typed argument or file value is refused naming the key and its source."""
    config_file = tmp_path / "autoheal.toml"
    config_file.write_text("trace_wait = 4.5\n")
    from_file = AutohealEngine(state_dir=tmp_path / "a", config_file=config_file)
    derived = AutohealEngine(state_dir=tmp_path / "b")
    try:
        assert from_file.config.trace_wait == 4.5
        assert str(source_of(from_file.config, "trace_wait")) == f"{config_file}: trace_wait"
        assert derived.config.trace_wait == default_trace_wait() and source_of(derived.config, "trace_wait").path
        assert str(source_of(derived.config, "state_dir")) == "argument state_dir"
    finally:
        from_file.shutdown()
        derived.shutdown()
    with pytest.raises(ConfigError) as argument:
        AutohealEngine(state_dir=tmp_path / "c", trace_wait=True)
    assert argument.value.key == "trace_wait" and "passed as an argument" in argument.value.problem
    config_file.write_text("max_traces = 2.5\n")
    monkeypatch.setenv("AUTOHEAL_CONFIG", str(config_file))
    with pytest.raises(ConfigError) as from_env_file:
        AutohealEngine(state_dir=tmp_path / "d")
    assert str(from_env_file.value) == f"max_traces: expected an integer, got 2.5 (in {config_file})"
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_slow_sink_never_delays_the_apps_export(tmp_path: Path, blocking_sink: BlockingSink) -> None:
    """While the sink hangs, spans still leave the application's thread at once and flush/shutdown keep their timeouts."""
    exporter = AutohealSpanExporter(state_dir=tmp_path, trace_wait=0.1, sink=blocking_sink)
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # export() runs in the app's thread
    tracer = provider.get_tracer("shop")
    with pytest.raises(KeyError), tracer.start_as_current_span("first"):
        _reserve(1)
    assert blocking_sink.entered.wait(30), "the sink was never called"

    slowest = 0.0
    for cart in range(20):
        started = time.monotonic()
        with pytest.raises(KeyError), tracer.start_as_current_span("checkout"):
            _reserve(cart)
        slowest = max(slowest, time.monotonic() - started)
    assert slowest < 1.0, f"a span export took {slowest:.2f}s while the sink was blocked"

    started = time.monotonic()
    assert exporter.force_flush(timeout_millis=200) is False
    exporter.shutdown(timeout_millis=500)
    assert time.monotonic() - started < 4.0
    assert exporter.export([]) == SpanExportResult.FAILURE  # after shutdown: refused, never raised
    exporter.shutdown()  # idempotent
    provider.shutdown()


def test_failing_sink_does_not_stop_recording(tmp_path: Path, providers: list) -> None:
    """A sink that raises on every update neither reaches the app nor stops occurrences being counted."""
    sink = FailingSink()
    exporter = AutohealSpanExporter(state_dir=tmp_path, trace_wait=0.1, sink=sink)
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    providers.append(provider)
    tracer = provider.get_tracer("shop")
    for cart in range(3):
        with pytest.raises(KeyError), tracer.start_as_current_span("checkout"):
            _reserve(cart)
        wait_for(lambda: sink.calls > cart, timeout=30, message="the sink to be called")  # noqa: B023
    assert [i["count"] for i in read_issues(tmp_path)] == [3]


def _finished_spans(count: int) -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("load")
    for _ in range(count):
        with tracer.start_as_current_span("request"):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_queue_overflow_is_counted_and_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """What does not fit in queue_size is dropped, counted, and reported once with the setting to raise."""
    spans = _finished_spans(50)
    exporter = AutohealSpanExporter(state_dir=tmp_path, queue_size=10)
    engine = exporter.engine
    assert engine is not None
    try:
        with caplog.at_level(logging.WARNING, logger="otel_autoheal.exporters"):
            assert exporter.export(spans) == SpanExportResult.FAILURE
            assert engine.dropped == 40
            assert exporter.export(spans) == SpanExportResult.FAILURE
            assert 80 <= engine.dropped <= 90
        assert engine.metrics.value("autoheal_exporter_dropped_total", reason="queue_full") == engine.dropped
        warnings = [r.getMessage() for r in caplog.records if "queue is full" in r.getMessage()]
        assert len(warnings) == 1 and "AUTOHEAL_EXPORTER_QUEUE_SIZE" in warnings[0] and "queue_size=10" in warnings[0]
        assert exporter.force_flush(10_000)
        assert exporter.export(spans[:5]) == SpanExportResult.SUCCESS  # room again once drained
    finally:
        exporter.shutdown()


def test_broken_state_dir_never_reaches_the_app(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An unusable state dir disables the exporters with an error log; the SDK calls never raise."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with caplog.at_level(logging.ERROR, logger="otel_autoheal.exporters"):
        spans = AutohealSpanExporter(state_dir=blocker / "state")
        logs = AutohealLogExporter(state_dir=blocker / "state")
    assert spans.engine is None and logs.engine is None
    assert any("disabled" in r.getMessage() for r in caplog.records)
    assert spans.export(_finished_spans(1)) == SpanExportResult.FAILURE
    assert logs.export([]) == LogRecordExportResult.FAILURE
    assert spans.force_flush() and logs.force_flush()
    spans.shutdown()
    logs.shutdown()


def test_own_log_lines_are_not_fed_back(tmp_path: Path, providers: list) -> None:
    """Exception logs from otel_autoheal's own loggers never become issues (no feedback loop)."""
    exporter = AutohealLogExporter(state_dir=tmp_path, trace_wait=0.1)
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    providers.append(provider)
    for name in ("otel_autoheal.pipeline", "shop.worker"):
        provider.get_logger(name).emit(
            body="failed", severity_number=SeverityNumber.ERROR,
            attributes={"exception.type": "RuntimeError", "exception.message": f"boom in {name}"})
    assert exporter.force_flush(10_000)
    issues = read_issues(tmp_path)
    assert [i["title"] for i in issues] == ["[autoheal] RuntimeError: boom in shop.worker"]


def test_pipeline_behind_drops_instead_of_growing(tmp_path: Path, blocking_sink: BlockingSink,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """With the sink stuck, finished traces stop piling up at max_pending_traces: new ones are dropped and counted."""
    engine = AutohealEngine(state_dir=tmp_path, trace_wait=0.05, sink=blocking_sink,
                            env={"AUTOHEAL_MAX_TRACES": "2", "AUTOHEAL_MAX_PENDING_TRACES": "1"})
    exporter = AutohealSpanExporter(engine)
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("shop")
    try:
        with caplog.at_level(logging.WARNING, logger="otel_autoheal.exporters"):
            def fail_once() -> float:
                with pytest.raises(KeyError), tracer.start_as_current_span("checkout"):
                    _reserve(0)
                return engine.metrics.value("autoheal_exporter_dropped_total", reason="pipeline_behind")

            fail_once()
            assert blocking_sink.entered.wait(30), "the sink was never called"
            wait_for(fail_once, timeout=30, message="a drop because the pipeline is behind")
        assert any("max_pending_traces" in r.getMessage() for r in caplog.records)
    finally:
        blocking_sink.release.set()
        provider.shutdown()


def test_logs_exported_before_their_spans_join_the_issue(tmp_path: Path, providers: list) -> None:
    """Log lines that reach the engine before the spans of their trace are still shown in its issue."""
    engine = AutohealEngine(state_dir=tmp_path, trace_wait=30)
    tracer_provider = TracerProvider(resource=RESOURCE)
    tracer_provider.add_span_processor(BatchSpanProcessor(AutohealSpanExporter(engine), schedule_delay_millis=60_000))
    logger_provider = LoggerProvider(resource=RESOURCE)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(AutohealLogExporter(engine)))
    providers += [tracer_provider, logger_provider]
    with pytest.raises(KeyError):
        _checkout(tracer_provider.get_tracer("shop"), logger_provider.get_logger("shop"), 5)
    assert tracer_provider.force_flush(10_000)  # the spans follow the logs into the engine's queue
    assert engine.force_flush(10_000)
    issues = read_issues(tmp_path)
    assert [i["count"] for i in issues] == [1]
    assert issues[0]["body"].index("loading cart 5") < issues[0]["body"].index("reserving stock 5")


def test_traces_without_errors_do_not_push_a_failing_trace_out(tmp_path: Path, providers: list) -> None:
    """Traces without an error beyond max_traces cost only the quiet index: a failing trace is held for its late logs."""
    engine = AutohealEngine(state_dir=tmp_path, trace_wait=30, env={"AUTOHEAL_MAX_TRACES": "5"})
    tracer_provider = TracerProvider(resource=RESOURCE)
    tracer_provider.add_span_processor(SimpleSpanProcessor(AutohealSpanExporter(engine)))
    logger_provider = LoggerProvider(resource=RESOURCE)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(AutohealLogExporter(engine),
                                                                     schedule_delay_millis=60_000))
    providers += [tracer_provider, logger_provider]
    tracer, otel_logger = tracer_provider.get_tracer("shop"), logger_provider.get_logger("shop")
    with pytest.raises(KeyError):
        _checkout(tracer, otel_logger, 9)
    for n in range(20):
        with tracer.start_as_current_span("browse"), tracer.start_as_current_span("render"):
            otel_logger.emit(body=f"rendering page {n}", severity_number=SeverityNumber.INFO)
    assert logger_provider.force_flush(10_000)  # the failing trace's log lines arrive after 20 other traces
    assert engine.force_flush(10_000)
    assert engine.metrics.value("autoheal_traces_evicted_total") == 0
    issues = read_issues(tmp_path)
    assert [i["count"] for i in issues] == [1]
    body = issues[0]["body"]
    assert "loading cart 9" in body and "reserving stock 9" in body and "rendering page" not in body
