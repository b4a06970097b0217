"""Hand-made occurrences for the GitHub sink tests (shared with the sink subprocess)."""

from __future__ import annotations

import time
import uuid

from otel_autoheal.model import ExceptionRecord, Frame, Occurrence, ParsedException
from otel_autoheal.sinks.github.markers import data_line, marker_for

__all__ = ["fingerprint", "make_occurrence"]


def fingerprint(name: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, name).hex * 2


def make_occurrence(
    fp: str,
    *,
    version: str = "1.0.0",
    source: str = "cli",
    in_app: bool = True,
    body_size: int = 0,
    message: str = "",
    ingest_trust: str = "",
) -> Occurrence:
    frames = (
        Frame("/usr/lib/python3.11/runpy.py", "_run_module", 88, in_app=False),
        Frame("app/handlers.py", "handle_order", 42, in_app=in_app),
    )
    exc = ExceptionRecord(
        type="ValueError",
        message=message or f"bad order {fp[:6]}",
        stacktrace="Traceback (most recent call last):\n  File \"app/handlers.py\", line 42\nValueError: "
        + (message or "bad order"),
        time_unix_nano=time.time_ns(),
        trace_id=uuid.uuid4().hex,
        span_id=uuid.uuid4().hex[:16],
        origin="span_event",
        resource={"service.name": "shop", "service.version": version, "autoheal.source": source},
        chain=[ParsedException("ValueError", "bad order", frames, "python")],
        ingest_trust=ingest_trust,
    )
    # The renderer's layout: marker and data block on lines 1 and 2, untrusted text fenced below.
    data = {"fingerprint": fp, "exception_type": "ValueError", "service": "shop", "source": source}
    body = (
        f"{marker_for(fp)}\n{data_line(data)}\n"
        f"## ValueError: bad order\n\nService `shop` version `{version}`\n\n```text\n{exc.stacktrace}\n```\n"
        + ("x" * body_size)
    )
    return Occurrence(fingerprint=fp, grouping_fields=["ValueError", "app/handlers.py:handle_order"],
                      title=f"ValueError: bad order in handle_order ({fp[:6]})", body=body, exception=exc)
