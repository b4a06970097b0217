"""The OTLP payload of a finished CLI run: one span, its exception and the run's log records.

Imported only when a run has something to send (the protobuf code comes with it).
"""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING, Any

from ._config import resource_attributes
from ._exceptions import MAX_STATUS, exception_attributes, summary
from ._logfields import severity, source_attributes
from ._otlp import EventData, LogData, SpanData, build_logs, build_traces
from ._scrub import scrub_argv, scrub_text, scrub_value
from ._version import version

if TYPE_CHECKING:
    from ._cli_run import CliRun
    from ._config import Settings

__all__ = ["build_payload"]

_SCOPE_NAME = "autoheal_instrumentation.cli"
_MAX_LOG_BODY = 8192
_STATUS_UNSET, _STATUS_ERROR = 0, 2
_FATAL = (21, "FATAL")


def build_payload(run: CliRun, command: str | None, end_ns: int) -> tuple[bytes, bytes]:
    """Serialized OTLP trace and log export requests for ``run`` (logs empty when there are none)."""
    prog = os.path.basename(run.argv[0]) if run.argv and run.argv[0] else "python"
    runtime_version = platform.python_version()
    resource = _resource(run.settings, run.exception)
    attributes = _span_attributes(run, prog, command, runtime_version)
    logs = _buffered_logs(run)
    events: list[EventData] = []
    status_code, status_message = _STATUS_UNSET, ""
    if run.exception is not None:
        exc_attrs = exception_attributes(run.exception, skip_own_frames=True)
        status_code = _STATUS_ERROR
        status_message = summary(run.exception, exc_attrs["exception.message"])[:MAX_STATUS]
        attributes["error.type"] = exc_attrs["exception.type"]
        from ._source_context import source_context_attributes

        event_attrs = {**exc_attrs, "exception.escaped": "True",
                       **source_context_attributes(run.exception, scrub_text)}
        events.append({"name": "exception", "time": run.exception_ns, "attributes": event_attrs})
        logs.append(_exception_log(run, exc_attrs, status_message, command))
    span: SpanData = {
        "trace_id": run.trace_id,
        "span_id": run.span_id,
        "name": f"{prog} {command}" if command else prog,
        "start": run.start_ns,
        "end": end_ns,
        "attributes": attributes,
        "events": events,
        "status_code": status_code,
        "status_message": status_message,
    }
    scope = (_SCOPE_NAME, version())
    traces_pb = build_traces(resource, scope, [span])
    logs_pb = build_logs(resource, scope, logs) if logs else None
    return traces_pb.SerializeToString(), logs_pb.SerializeToString() if logs_pb is not None else b""


def _resource(settings: Settings, exception: BaseException | None) -> dict[str, Any]:
    # The revision is looked up on the failure path only.
    resource: dict[str, Any] = {
        "telemetry.sdk.name": "otel-autoheal-instrumentation",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": version(),
        **resource_attributes(settings, exception),
    }
    # OTEL_RESOURCE_ATTRIBUTES is text someone typed: scrubbed like the rest, since the payload
    # may be spooled to disk.
    scrubbed: dict[str, Any] = scrub_value(resource)
    return scrubbed


def _span_attributes(run: CliRun, prog: str, command: str | None, runtime_version: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "process.command": prog,
        "process.command_args": scrub_argv(run.argv),
        "process.runtime.version": runtime_version,
        "cli.command": command or "",
        "service.version": run.settings.service_version,
    }
    if run.exit_code is not None:
        attributes["process.exit.code"] = run.exit_code
    return attributes


def _buffered_logs(run: CliRun) -> list[LogData]:
    """The run's captured stdlib log records, oldest first, on the run's span."""
    logs: list[LogData] = []
    for ts, levelno, levelname, name, message, exc, pathname, lineno in run.logs.snapshot():
        number, text = severity(levelno, levelname)
        attributes: dict[str, Any] = source_attributes(name, pathname, lineno)
        if exc is not None:
            attributes.update(exception_attributes(exc, skip_own_frames=True))
        logs.append(_log(run, ts, (number, text), scrub_text(message[:_MAX_LOG_BODY]), attributes, ""))
    return logs


def _exception_log(run: CliRun, exc_attrs: dict[str, str], body: str, command: str | None) -> LogData:
    """The FATAL log record that carries the run's exception (``event_name=exception``)."""
    return _log(run, run.exception_ns, _FATAL, body, {**exc_attrs, "cli.command": command or ""}, "exception")


def _log(run: CliRun, ts: int, level: tuple[int, str], body: str, attributes: dict[str, Any], event: str) -> LogData:
    return {
        "time": ts,
        "severity_number": level[0],
        "severity_text": level[1],
        "body": body,
        "attributes": attributes,
        "trace_id": run.trace_id,
        "span_id": run.span_id,
        "event_name": event,
    }
