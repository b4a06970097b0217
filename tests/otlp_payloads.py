"""Builders of raw OTLP/JSON payloads (hex ids, as the OTLP/JSON spec requires) for tests."""

from __future__ import annotations

import gzip
import json
import os
import time
import urllib.error
import urllib.request
from typing import Any


def new_trace_id() -> str:
    return os.urandom(16).hex()


def new_span_id() -> str:
    return os.urandom(8).hex()


def now_nanos() -> int:
    return time.time_ns()


def attrs(values: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, value in values.items():
        if isinstance(value, bool):
            v: dict[str, Any] = {"boolValue": value}
        elif isinstance(value, int):
            v = {"intValue": str(value)}
        elif isinstance(value, list):
            v = {"arrayValue": {"values": [{"stringValue": str(x)} for x in value]}}
        else:
            v = {"stringValue": str(value)}
        out.append({"key": key, "value": v})
    return out


def span(trace_id: str, span_id: str, name: str, *, parent: str = "", error: bool = False, kind: int = 1,
         attributes: dict[str, Any] | None = None, exception: dict[str, str] | None = None,
         start: int | None = None) -> dict[str, Any]:
    start = start or now_nanos()
    data: dict[str, Any] = {
        "traceId": trace_id, "spanId": span_id, "name": name, "kind": kind,
        "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 1_000_000),
        "attributes": attrs(attributes or {}),
        "status": {"code": 2 if error or exception else 0},
    }
    if parent:
        data["parentSpanId"] = parent
    if exception:
        data["events"] = [{"name": "exception", "timeUnixNano": str(start + 500_000),
                           "attributes": attrs({f"exception.{k}": v for k, v in exception.items()})}]
    return data


def traces_payload(spans: list[dict[str, Any]], resource: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"resourceSpans": [{"resource": {"attributes": attrs(resource or {"service.name": "svc"})},
                               "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]}]}


def log_record(body: str, *, trace_id: str = "", span_id: str = "", time_nanos: int | None = None,
               severity: str = "INFO", severity_number: int = 9, attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {"timeUnixNano": str(time_nanos or now_nanos()), "severityText": severity,
                              "severityNumber": severity_number, "body": {"stringValue": body},
                              "attributes": attrs(attributes or {})}
    if trace_id:
        record["traceId"] = trace_id
    if span_id:
        record["spanId"] = span_id
    return record


def logs_payload(records: list[dict[str, Any]], resource: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"resourceLogs": [{"resource": {"attributes": attrs(resource or {"service.name": "svc"})},
                              "scopeLogs": [{"scope": {"name": "test"}, "logRecords": records}]}]}


def post(url: str, body: bytes | dict[str, Any], content_type: str = "application/json",
         headers: dict[str, str] | None = None, compress: bool = False) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    all_headers = {"Content-Type": content_type, **(headers or {})}
    if compress:
        data = gzip.compress(data)
        all_headers["Content-Encoding"] = "gzip"
    request = urllib.request.Request(url, data=data, headers=all_headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
