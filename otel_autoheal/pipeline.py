"""The pipeline after assembly: extract → scrub → group → render → store → sink."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from otel_autoheal.code_links import CodeLinker
from otel_autoheal.config import Config
from otel_autoheal.extract import extract_exceptions, fold_by_root_cause, preceding_logs, same_exception
from otel_autoheal.group.fingerprint import compute_fingerprint
from otel_autoheal.group.inapp import InAppRules
from otel_autoheal.group.stacktrace import parse_stacktrace
from otel_autoheal.metrics import Metrics
from otel_autoheal.model import ExceptionRecord, GroupUpdate, Occurrence, TraceData
from otel_autoheal.otlp import LogData, journal_key
from otel_autoheal.recent import RecentTraces
from otel_autoheal.render import RenderOptions, render_issue
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


def _cap_text(text: str, limit: int) -> str:
    """Cut at a whitespace boundary so that a secret is never left half-visible at the cut."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    cut = max(head.rfind("\n"), head.rfind(" "))
    return (head[:cut] if cut > limit // 2 else head) + f"\n[… {len(text) - limit} characters dropped]"


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
        self.code_links = CodeLinker(config)
        self._recent = RecentTraces(RECENT_TRACES, config.max_held_bytes // RECENT_SHARE, config.preceding_logs)
        metrics.gauge("autoheal_recent_traces", "Processed traces remembered to merge late data with.",
                      lambda: len(self._recent))

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
            stacktrace=s.text(_cap_text(record.stacktrace, MAX_STACKTRACE_CHARS)),
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
        # Journal entries up to here belong to data this call sees; later ones wait for their turn.
        journal_mark = self.store.journal_high_water()
        # A trace-less "trace" is one exception log, journalled under a key of its own.
        journal = trace.trace_id or next((journal_key(r) for r in trace.logs if r.has_exception), "")
        trace, recorded = self._merge_late(trace)
        records = extract_exceptions(trace)
        fresh = {id(r) for r in records if not any(same_exception(r, old) for old in recorded)}
        self.metrics.inc("autoheal_exceptions_seen_total", len(fresh))
        updates = []
        # Exceptions recorded from an earlier part of the trace take part in folding (a late
        # symptom joins its recorded root cause) but are never recorded again: an incident counts
        # only when its head is new, and earlier exceptions are not repeated as its related errors.
        earlier = {id(r) for r in recorded}
        incidents = []
        for incident in fold_by_root_cause([*recorded, *records], trace.spans):
            if id(incident.head) in fresh:
                incident.related = [r for r in incident.related if id(r) not in earlier]
                incidents.append(incident)
        for index, incident in enumerate(incidents):
            last = index == len(incidents) - 1
            head = incident.head
            head.preceding_logs = preceding_logs(
                head, trace, self.config.preceding_logs, orphan_logs, int(self.config.fallback_log_window * 1e9)
            )
            head = self._scrub_record(head)
            related = [self._scrub_record(r) for r in incident.related]
            for r in (head, *related):
                r.chain = parse_stacktrace(r.stacktrace, r.type, r.message, self.rules)
                r.chain = self.symbolicator.resolve(r)  # minified JavaScript frames → original, before the key
                r.type = r.type or r.chain[0].type  # a log bridge that sent no type: the stack's
            fingerprint = compute_fingerprint(head.service_name, head.chain)
            head.chain = annotate_chain(head, self.scrubber, self.code_links.link)  # display only: after the key
            occurrence = Occurrence(fingerprint.hex, fingerprint.fields, "", "", head, related)

            def render(stats, head=head, related=related, fingerprint=fingerprint, occurrence=occurrence):  # type: ignore[no-untyped-def]
                title, body = render_issue(head, related, fingerprint, stats, self.render_options)
                occurrence.title, occurrence.body = title, body
                return title, body

            # The journal of the trace is cleared with its last record, in the same transaction.
            update = self.store.record(occurrence, render, journal_trace=(journal, journal_mark) if last else None)
            if update.duplicate:  # delivered again (a retry, a replay): already counted and handed on
                self.metrics.inc("autoheal_duplicates_total")
                continue
            self.metrics.inc("autoheal_occurrences_total")
            if update.is_new:
                self.metrics.inc("autoheal_issues_filed_total")
                log.info("new issue #%d %s", update.group.id, update.group.title)
            try:
                self.sink.handle(update)
            except Exception:
                self.metrics.inc("autoheal_pipeline_errors_total")
                log.exception("sink %s failed to handle group %d", self.sink.name, update.group.id)
            updates.append(update)
        if not incidents:
            self.store.journal_done(journal, journal_mark)
        self._recent.remember(trace, [*recorded, *records])
        return updates

