"""When the assembler lets a failing trace go: once its ``trace_wait`` is over, woken by that deadline, not a tick."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from inprocess_support import _isolated_env  # noqa: F401
from otel_autoheal.exporters import AutohealEngine, AutohealSpanExporter
from polling import wait_for

TRACE_WAIT = 5.0
#: How long the held trace is watched, well inside its trace_wait.
WATCH = 1.5


def _sleeps(thread: threading.Thread) -> int:
    """How many times the thread has gone to sleep so far (the kernel's voluntary context switches)."""
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("voluntary_ctxt_switches:")))


def _reserve() -> None:
    raise KeyError("sku-1")


def test_failing_trace_is_released_by_its_own_deadline(tmp_path: Path) -> None:
    """While a failing trace waits out trace_wait the assembler thread sleeps through, and it is recorded only after."""
    earlier = set(threading.enumerate())
    engine = AutohealEngine(state_dir=tmp_path, trace_wait=TRACE_WAIT)
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(AutohealSpanExporter(engine)))
    tracer = provider.get_tracer("shop")
    try:
        # This engine's own thread (another test's engine may still be running in this process).
        assembler = next(t for t in set(threading.enumerate()) - earlier if t.name == "autoheal-assembler")
        before = time.time()
        with pytest.raises(KeyError), tracer.start_as_current_span("checkout"):
            _reserve()
        wait_for(lambda: engine.assembler.traces_held() == 1, timeout=30, message="the failing trace held")
        slept = _sleeps(assembler)
        # A measuring window, not synchronisation: a thread polling on a tick (every 200 ms before)
        # goes to sleep again after each tick; one waiting for the trace's deadline does not.
        time.sleep(WATCH)
        assert engine.assembler.traces_held() == 1, "released before its trace_wait was over"
        assert _sleeps(assembler) - slept <= 2, "the assembler thread woke up while nothing was due"
        group = wait_for(lambda: engine.store.groups(), timeout=60, message="the issue recorded")[0]
        assert group.first_processed >= before + TRACE_WAIT
    finally:
        provider.shutdown()
        engine.shutdown()
