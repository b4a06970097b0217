"""Plain data passed between the pipeline stages.

These types carry no behaviour beyond small helpers, so every stage can be tested with
hand-made values and a sink can be written without knowing OTLP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for annotations: the model stays importable without the OTLP decoder
    from otel_autoheal.otlp import LogData, SpanData

__all__ = [
    "ExceptionRecord",
    "Frame",
    "GroupRecord",
    "GroupStats",
    "GroupUpdate",
    "LogLine",
    "Occurrence",
    "ParsedException",
    "TraceData",
]


@dataclass(frozen=True)
class Frame:
    """One stack frame, as parsed from a stack trace text.

    ``instrumentation`` marks frames of the telemetry machinery itself (SDK capture helpers,
    agents, patch wrappers): never in-app, never part of a grouping key.

    ``pre_context`` / ``context_line`` / ``post_context`` are the source lines around ``lineno``
    (scrubbed; from the sender or a source map's ``sourcesContent``) and ``source_link`` a URL to
    the line at the deployed revision: shown in the issue only, never part of a grouping key.
    ``symbolication`` is ``None`` for frames that needed no source map or were resolved through
    one, else why a JavaScript frame stayed minified (e.g. no map for its release).
    """

    filename: str
    function: str
    lineno: int | None = None
    colno: int | None = None
    module: str | None = None
    in_app: bool = True
    source_line: str | None = None
    instrumentation: bool = False
    pre_context: tuple[str, ...] = ()
    context_line: str | None = None
    post_context: tuple[str, ...] = ()
    source_link: str | None = None
    symbolication: str | None = None


@dataclass(frozen=True)
class ParsedException:
    """One exception of a (possibly chained) stack trace, frames ordered outermost call first."""

    type: str
    message: str
    frames: tuple[Frame, ...] = ()
    language: str = "unknown"


@dataclass(frozen=True)
class LogLine:
    """A log record shown as context before an exception."""

    time_unix_nano: int
    severity: str
    body: str
    trace_id: str = ""
    span_id: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class TraceData:
    """Everything the service kept of one trace (or of one orphan exception log)."""

    trace_id: str
    spans: dict[str, SpanData] = field(default_factory=dict)
    logs: list[LogData] = field(default_factory=list)


@dataclass
class ExceptionRecord:
    """An exception as found in telemetry: a span event or an exception log record.

    ``chain`` holds the parsed exception chain, root cause last, and is filled by grouping.
    """

    type: str
    message: str
    stacktrace: str
    time_unix_nano: int
    trace_id: str
    span_id: str
    origin: str  # "span_event" or "log"
    resource: dict[str, Any] = field(default_factory=dict)
    span_name: str = ""
    span_kind: str = ""
    span_attributes: dict[str, Any] = field(default_factory=dict)
    parent_span_id: str = ""
    span_start_unix_nano: int = 0
    preceding_logs: list[LogLine] = field(default_factory=list)
    chain: list[ParsedException] = field(default_factory=list)
    #: The ingest path's verdict on where this came from, never taken from the data itself:
    #: ``trusted`` (an authenticated ingest token mapped to a trusted source), ``untrusted``
    #: (browser/CORS or unauthenticated ingest) or ``""`` when the receiver gave none; then the
    #: GitHub sink falls back to ``autoheal.source``, untrusted for browser and unknown sources.
    ingest_trust: str = ""
    #: ``autoheal.source_context`` as sent (one JSON object per frame): the source lines around
    #: the failing lines of in-app frames, captured by the instrumentation. Untrusted, unscrubbed
    #: until the pipeline attaches it to the parsed frames; never part of a grouping key.
    source_context: tuple[str, ...] = ()

    @property
    def service_name(self) -> str:
        return str(self.resource.get("service.name") or "unknown_service")

    @property
    def service_version(self) -> str:
        return str(self.resource.get("service.version") or "")

    @property
    def environment(self) -> str:
        return str(
            self.resource.get("deployment.environment.name")
            or self.resource.get("deployment.environment")
            or ""
        )

    @property
    def source(self) -> str:
        return str(self.resource.get("autoheal.source") or "")


@dataclass
class Occurrence:
    """One grouped, scrubbed and rendered occurrence of an error, ready for the store and sinks.

    ``related`` lists the other exceptions of the same trace folded into this one (symptoms of
    the root cause), already scrubbed.
    """

    fingerprint: str
    grouping_fields: list[str]
    title: str
    body: str
    exception: ExceptionRecord
    related: list[ExceptionRecord] = field(default_factory=list)

    @property
    def trace_id(self) -> str:
        return self.exception.trace_id

    @property
    def key(self) -> str:
        """What makes this occurrence itself: a delivery repeated by a retry or a replay has the same key."""
        exc = self.exception
        return f"{self.fingerprint}:{exc.trace_id}:{exc.span_id}:{exc.time_unix_nano}:{exc.origin}"


@dataclass(frozen=True)
class GroupRecord:
    """A group (one issue) as stored in the state database.

    ``first_seen`` / ``last_seen`` are the errors' own times (from the telemetry, or the processing
    time when the sender's clock is implausible); ``first_processed`` / ``last_processed`` are when
    otel-autoheal recorded them.
    """

    id: int
    fingerprint: str
    title: str
    body: str
    count: int
    first_seen: float
    last_seen: float
    service: str
    exception_type: str
    source: str
    versions: tuple[str, ...]
    trace_ids: tuple[str, ...]
    first_processed: float = 0.0
    last_processed: float = 0.0


@dataclass(frozen=True)
class GroupStats:
    """The numbers a renderer needs about a group, including the occurrence being recorded."""

    count: int
    first_seen: float
    last_seen: float
    versions: tuple[str, ...]
    #: The group's title before this occurrence ("" for a new group), so that a title can mask
    #: exactly what varies between occurrences.
    title: str = ""


@dataclass(frozen=True)
class GroupUpdate:
    """What a sink receives for each occurrence, after the store has recorded it.

    ``is_new`` is true for the first occurrence of a group; ``new_version`` is true when the
    occurrence's ``service.version`` was not seen before for this group.
    """

    group: GroupRecord
    occurrence: Occurrence
    is_new: bool
    new_version: bool
    #: The store had already counted this very occurrence (a retried delivery, a journal replay,
    #: another instance): nothing changed and sinks must not see it again.
    duplicate: bool = False
