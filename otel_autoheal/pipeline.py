"""The pipeline after assembly: extract → scrub → group → render → store → sink."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from otel_autoheal._memo import TextMemo
from otel_autoheal.code_links import CodeLinker
from otel_autoheal.config import Config
from otel_autoheal.extract import extract_exceptions, fold_by_root_cause, preceding_logs, same_exception
from otel_autoheal.group.inapp import InAppRules
from otel_autoheal.group.memo import GroupingMemo
from otel_autoheal.metrics import Metrics
from otel_autoheal.model import ExceptionRecord, GroupUpdate, Occurrence, TraceData
from otel_autoheal.otlp import LogData, journal_key
from otel_autoheal.recent import RecentTraces
from otel_autoheal.render import OccurrenceRenderer, RenderOptions
from otel_autoheal.scrub import Scrubber
from otel_autoheal.sinks.base import Sink
from otel_autoheal.source_context import annotate_chain
from otel_autoheal.sourcemaps import Symbolicator
from otel_autoheal.state._protocol import Store
from otel_autoheal.state.postgres import PostgresStore
from otel_autoheal.state.sqlite import SQLiteStore

__all__ = ["Pipeline"]

log = logging.getLogger("otel_autoheal.pipeline")

#: Longest stack trace text kept (before rendering trims further for GitHub's size limit).
MAX_STACKTRACE_CHARS = 256_000
#: Longest exception message kept.
MAX_MESSAGE_CHARS = 8_000
#: Processed traces remembered so that data arriving late (e.g. spans held back by a collector's
#: tail-sampling decision while the logs went straight through) is merged, not counted twice.
RECENT_TRACES = 5_000
#: Share of ``max_held_bytes`` the remembered traces may use (1/4).
RECENT_SHARE = 4
#: Characters of scrubbed stack traces remembered (inputs and results), and the longest stack kept.
STACK_MEMO_CHARS = 2 * 1024 * 1024
STACK_MEMO_MAX_CHARS = 32_000
#: Most finished traces counted in one store transaction (a backlog is recorded in several).
MAX_BATCH_TRACES = 256


def _cap_text(text: str, limit: int) -> str:
    """Cut at a whitespace boundary so that a secret is never left half-visible at the cut."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    cut = max(head.rfind("\n"), head.rfind(" "))
    return (head[:cut] if cut > limit // 2 else head) + f"\n[… {len(text) - limit} characters dropped]"


@dataclass
class _Prepared:
    """A finished trace made ready to record: its new occurrences and its journal (key, high-water id)."""

    trace: TraceData
    occurrences: list[Occurrence]
    journal: tuple[str, int | None]


class Pipeline:
    """Turns finished traces into recorded occurrences and sink updates."""

    def __init__(self, config: Config, store: Store, sink: Sink, metrics: Metrics) -> None:
        self.config = config
        self.store = store
        self.sink = sink
        self.metrics = metrics
        self.scrubber = Scrubber(
            extra_patterns=config.scrub.extra_patterns, allow=config.scrub.allow, enabled=config.scrub.enabled
        )
        self.rules = InAppRules(config.in_app_include, config.in_app_exclude)
        # Both stores hold uploaded maps; the Store protocol itself does not promise the table.
        maps_store = store if isinstance(store, (SQLiteStore, PostgresStore)) else None
        self.symbolicator = Symbolicator(maps_store, config.sourcemaps_dir, self.rules, self.scrubber.text)
        self.render_options = RenderOptions(trace_url_template=config.trace_url_template)
        self._renderer = OccurrenceRenderer(self.render_options)
        self._grouping = GroupingMemo(self.rules, self.symbolicator.resolve)
        # The scrubber remembers short values itself; stack traces are long and repeat in a storm.
        self._scrub_stack = TextMemo(self.scrubber.text, STACK_MEMO_CHARS, STACK_MEMO_MAX_CHARS)
        self.code_links = CodeLinker(config)
        self._recent = RecentTraces(RECENT_TRACES, config.max_held_bytes // RECENT_SHARE, config.preceding_logs)
        metrics.gauge("autoheal_recent_traces", "Processed traces remembered to merge late data with.",
                      lambda: len(self._recent))
        metrics.gauge("autoheal_recent_bytes", "Estimated bytes of the processed traces remembered (part of "
                      "autoheal_held_bytes, bounded by max_held_bytes / 4).", lambda: self._recent.bytes)

    @property
    def recent_bytes(self) -> int:
        """Estimated bytes of the remembered traces (counted against ``max_held_bytes``)."""
        return self._recent.bytes

    def _scrub_record(self, record: ExceptionRecord) -> ExceptionRecord:
        s = self.scrubber
        return replace(
            record,
            type=s.text(record.type[:500]),
            # Span names carry routes and, from careless instrumentations, raw URLs with tokens.
            span_name=s.text(record.span_name[:1000]),
            message=s.text(_cap_text(record.message, MAX_MESSAGE_CHARS)),
            stacktrace=self._scrub_stack(_cap_text(record.stacktrace, MAX_STACKTRACE_CHARS)),
            resource=s.attributes(record.resource),
            span_attributes=s.attributes(record.span_attributes),
            preceding_logs=[
                replace(line, body=s.text(_cap_text(line.body, 4000)), attributes=s.attributes(line.attributes))
                for line in record.preceding_logs
            ],
        )

    def _merge_late(self, trace: TraceData) -> tuple[TraceData, list[ExceptionRecord]]:
        """Join ``trace`` with what was processed earlier under the same trace id.

        Returns the merged trace and the identities of the exceptions recorded earlier.
        """
        previous = self._recent.take(trace.trace_id) if trace.trace_id else None
        if previous is None:
            return trace, []
        self.metrics.inc("autoheal_late_traces_total")
        return previous.merged_with(trace), previous.recorded

    def process(self, trace: TraceData, orphan_logs: Sequence[LogData] = ()) -> list[GroupUpdate]:
        """Process one finished trace (``process_batch`` of one, its errors raised)."""
        prepared = [self._prepare(trace, orphan_logs, self.store.journal_high_water())]
        try:
            return self._record(prepared)
        except Exception:
            if trace.trace_id:  # not recorded: not to be remembered as such
                self._recent.take(trace.trace_id)
            raise

    def process_batch(self, traces: Sequence[TraceData], orphan_logs: Sequence[LogData] = ()) -> list[GroupUpdate]:
        """Process finished traces, counted in one store transaction with each group's issue rendered once.

        If that transaction fails, the traces are recorded one by one, so that one bad trace costs
        only itself (it stays in the intake journal, replayed at the next start). A trace that
        cannot be processed is logged and counted in ``autoheal_pipeline_errors_total``; this
        method itself never raises (it runs on the assembler's thread).
        """
        updates = []
        for start in range(0, len(traces), MAX_BATCH_TRACES):
            chunk = traces[start:start + MAX_BATCH_TRACES]
            try:
                # Journal entries up to here belong to data this call sees; later ones wait for their turn.
                journal_mark = self.store.journal_high_water()
            except Exception:
                for trace in chunk:
                    self._failed(trace)
                continue
            prepared = []
            for trace in chunk:
                try:
                    prepared.append(self._prepare(trace, orphan_logs, journal_mark))
                except Exception:  # one bad trace must not stop the others
                    self._failed(trace)
            updates += self._record_batch(prepared)
        return updates

    def _record_batch(self, prepared: Sequence[_Prepared]) -> list[GroupUpdate]:
        try:
            return self._record(prepared)
        except Exception as exc:
            if len(prepared) == 1:
                self._forget(prepared)
                return []
            log.warning("recording %d traces at once failed (%s: %s); recording them one by one", len(prepared),
                        type(exc).__name__, exc)
        updates = []
        for one in prepared:
            try:
                updates += self._record([one])
            except Exception:
                self._forget([one])
        return updates

    def _failed(self, trace: TraceData) -> None:
        self.metrics.inc("autoheal_pipeline_errors_total")
        log.exception("failed to process trace %s", trace.trace_id or "(no trace id)")

    def _forget(self, prepared: Sequence[_Prepared]) -> None:
        """Traces whose recording failed: not remembered as recorded (their journal replays them)."""
        for one in prepared:
            self._failed(one.trace)
            if one.trace.trace_id:
                self._recent.take(one.trace.trace_id)

    def _prepare(self, trace: TraceData, orphan_logs: Sequence[LogData], journal_mark: int) -> _Prepared:
        """Extract, scrub and group the new exceptions of ``trace``; remember it for late data."""
        # A trace-less "trace" is one exception log, journalled under a key of its own.
        journal = trace.trace_id or next((journal_key(r) for r in trace.logs if r.has_exception), "")
        trace, recorded = self._merge_late(trace)
        records = extract_exceptions(trace)
        fresh = {id(r) for r in records if not any(same_exception(r, old) for old in recorded)}
        self.metrics.inc("autoheal_exceptions_seen_total", len(fresh))
        # Exceptions recorded from an earlier part of the trace take part in folding (a late
        # symptom joins its recorded root cause) but are never recorded again: an incident counts
        # only when its head is new, and earlier exceptions are not repeated as its related errors.
        earlier = {id(r) for r in recorded}
        occurrences = []
        for incident in fold_by_root_cause([*recorded, *records], trace.spans):
            if id(incident.head) not in fresh:
                continue
            related = [r for r in incident.related if id(r) not in earlier]
            head = incident.head
            head.preceding_logs = preceding_logs(
                head, trace, self.config.preceding_logs, orphan_logs, int(self.config.fallback_log_window * 1e9)
            )
            head = self._scrub_record(head)
            related = [self._scrub_record(r) for r in related]
            for r in related:
                self._grouping.parse(r)
            fingerprint = self._grouping.fingerprint(head)
            head.chain = annotate_chain(head, self.scrubber, self.code_links.link)  # display only: after the key
            occurrences.append(Occurrence(fingerprint.hex, fingerprint.fields, "", "", head, related))
        # Remembered now, before a later trace of the batch with the same id is prepared (late data).
        self._recent.remember(trace, [*recorded, *records])
        return _Prepared(trace, occurrences, (journal, journal_mark))

    def _record(self, prepared: Sequence[_Prepared]) -> list[GroupUpdate]:
        """Count the prepared traces' occurrences in one transaction, clear their journal, tell the sink."""
        if not prepared:
            return []
        occurrences = [o for one in prepared for o in one.occurrences]
        updates = self.store.record_many(occurrences, self._renderer, journal=[one.journal for one in prepared])
        handed = []
        for update in updates:
            if update.duplicate:  # delivered again (a retry, a replay): already counted and handed on
                self.metrics.inc("autoheal_duplicates_total")
                continue
            # The issue as stored after the batch (rendered once per group, see state._batch).
            update.occurrence.title, update.occurrence.body = update.group.title, update.group.body
            self.metrics.inc("autoheal_occurrences_total")
            if update.is_new:
                self.metrics.inc("autoheal_issues_filed_total")
                log.info("new issue #%d %s", update.group.id, update.group.title)
            try:
                self.sink.handle(update)
            except Exception:
                self.metrics.inc("autoheal_pipeline_errors_total")
                log.exception("sink %s failed to handle group %d", self.sink.name, update.group.id)
            handed.append(update)
        return handed
