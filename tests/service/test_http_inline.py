"""OTLP/HTTP trace exports that hold no failure never wait for the intake journal, nor for its threads."""

from __future__ import annotations

import sqlite3
import threading

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otlp_payloads import log_record, logs_payload, new_span_id, new_trace_id, post
from polling import wait_for

PROTOBUF = "application/x-protobuf"
#: More than the HTTP receiver's intake threads (8), so that all of them wait for the journal.
WAITING_SENDERS = 10


def _trace_without_failure() -> bytes:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = "inline"
    resource_spans.scope_spans.add().spans.add(trace_id=b"\x11" * 16, span_id=b"\x22" * 8, name="GET /ok", kind=2,
                                               start_time_unix_nano=1_700_000_000_000_000_000,
                                               end_time_unix_nano=1_700_000_000_001_000_000)
    body = request.SerializeToString()
    assert b"exception" not in body and b"\x18\x02" not in body  # holds no failure marker
    return body


def test_export_without_failure_is_acknowledged_while_every_intake_thread_waits_for_the_journal(
        autoheal_factory, tmp_path):
    """With the journal held off by another writer and every HTTP intake thread waiting for it, a
    trace export without failures is still acknowledged, and the waiting errors are then filed."""
    state = tmp_path / "held"
    svc = autoheal_factory(state_dir=state, env={"AUTOHEAL_JOURNAL_TIMEOUT": "60"})
    answers: list[int] = []

    def send_error(index: int) -> None:
        record = log_record("failed", trace_id=new_trace_id(), span_id=new_span_id(), severity="ERROR",
                            severity_number=17, attributes={"exception.type": f"Waiting{index}Error",
                                                            "exception.message": "boom"})
        answers.append(post(f"{svc.http_endpoint}/v1/logs", logs_payload([record]))[0])

    senders = [threading.Thread(target=send_error, args=(index,)) for index in range(WAITING_SENDERS)]
    holder = sqlite3.connect(state / "autoheal.sqlite3", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        for sender in senders:
            sender.start()
        wait_for(lambda: svc.metric("autoheal_journal_waiting") >= 8, 30, 0.1, "8 requests waiting for the journal")
        status, reply = post(f"{svc.http_endpoint}/v1/traces", _trace_without_failure(), PROTOBUF)
        assert status == 200, reply[:300]
        assert answers == []  # the errors are all still waiting for the journal
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        for sender in senders:
            sender.join(120)
    assert answers == [200] * WAITING_SENDERS
    assert len(svc.wait_for_issues(WAITING_SENDERS)) == WAITING_SENDERS
