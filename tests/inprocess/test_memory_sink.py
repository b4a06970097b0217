"""``MemorySink``, the fake issue tracker shipped for users' tests, behind the real in-process exporter."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from inprocess_support import _isolated_env  # noqa: F401
from otel_autoheal.exporters import AutohealSpanExporter
from otel_autoheal.sinks import MemorySink
from polling import wait_for


def _reserve(cart: int) -> None:
    raise KeyError(f"sku-{cart}")


def test_memory_sink_receives_each_occurrence_and_marks_the_first_of_a_group_new(tmp_path: Path) -> None:
    """An app's test can assert on the issues its errors become: one update per occurrence, one new group per bug."""
    sink = MemorySink()
    exporter = AutohealSpanExporter(state_dir=tmp_path, trace_wait=0.1, sink=sink)
    provider = TracerProvider(resource=Resource.create({"service.name": "shop", "service.version": "2.0.0"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("shop")
    try:
        for cart in range(2):
            with pytest.raises(KeyError), tracer.start_as_current_span("checkout"):
                _reserve(cart)
        wait_for(lambda: len(sink.updates) == 2, timeout=30, message="two updates in the memory sink")
        first, second = sink.updates
        assert sink.new_groups == [first]
        assert not second.is_new and second.group.id == first.group.id and second.group.count == 2
        assert first.occurrence.exception.type == "KeyError" and first.occurrence.exception.service_name == "shop"
        assert "KeyError" in first.group.title and "_reserve" in first.occurrence.body
        assert sink.status() == {"sink": "memory", "updates": 2}
        assert not sink.closed
    finally:
        provider.shutdown()
    assert sink.closed, "shutting the exporter down closes its sink"
