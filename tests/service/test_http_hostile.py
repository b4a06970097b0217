"""Hostile and unusual HTTP clients against the real service over raw sockets: each gets the
documented outcome, and a normal client is still served meanwhile."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from otel_autoheal.config import load_config
from otel_autoheal.errors import ConfigError
from otlp_payloads import new_span_id, new_trace_id, post, span, traces_payload
from polling import wait_for

REPO = Path(__file__).resolve().parents[2]
AutohealProcess = Any  # conftest's service handle

#: Generous deadline for any single socket read; reaching it means the server held the connection.
DEADLINE = 30.0


def _failing_trace(message: str) -> bytes:
    payload = traces_payload([span(new_trace_id(), new_span_id(), "op",
                                   exception={"type": "ValueError", "message": message, "stacktrace": ""})])
    return json.dumps(payload).encode()


def _connect(svc: AutohealProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", svc.http_port), timeout=DEADLINE)
    sock.settimeout(DEADLINE)
    return sock


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP response from a raw socket (status, lower-cased headers, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a complete response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body[:length]


def _closed_by_server(sock: socket.socket) -> bool:
    """True when the server closes the connection (EOF or reset) before the read deadline."""
    try:
        while True:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _thread_count(svc: AutohealProcess) -> int:
    assert svc.proc is not None
    for line in Path(f"/proc/{svc.proc.pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no thread count in /proc")


def _healthy(svc: AutohealProcess) -> bool:
    with urllib.request.urlopen(f"{svc.http_endpoint}/healthz", timeout=DEADLINE) as response:
        return response.status == 200


def test_many_slow_connections_hold_no_threads_while_a_normal_client_is_served(autoheal_factory):
    """200 connections that never finish their headers cost no thread each, a normal export is served and stop is prompt."""
    svc = autoheal_factory(env={"AUTOHEAL_HTTP_HEADER_TIMEOUT": "300"})
    threads_before = _thread_count(svc)
    slow: list[socket.socket] = []
    try:
        for i in range(200):
            sock = _connect(svc)
            if i % 2:
                sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl")
            slow.append(sock)
        status, answer = post(f"{svc.http_endpoint}/v1/traces", _failing_trace("served among slow clients"))
        assert status == 200, answer
        assert svc.wait_for_issues(1)[0]["exception_type"] == "ValueError"
        # A thread per connection (the old ThreadingHTTPServer) would add 200 here.
        assert _thread_count(svc) - threads_before < 20
    finally:
        for sock in slow:
            sock.close()
    svc.stop()
    assert svc.proc is not None and svc.proc.returncode == 0


def test_body_shorter_than_content_length_gets_408_after_the_body_timeout(autoheal_factory):
    """A body that stops short of its Content-Length gets 408 and the connection is closed; others are served."""
    svc = autoheal_factory(env={"AUTOHEAL_HTTP_BODY_TIMEOUT": "1"})
    sock = _connect(svc)
    try:
        sock.sendall(_request("POST", "/v1/traces", b'{"resourceSpans":',
                              {"Content-Type": "application/json", "Content-Length": "1000"}))
        assert post(f"{svc.http_endpoint}/v1/traces", _failing_trace("meanwhile"))[0] == 200
        status, _, body = _read_response(sock)
        assert status == 408
        assert b"http_body_timeout" in body
        assert _closed_by_server(sock)
    finally:
        sock.close()
    assert svc.metric('autoheal_requests_rejected_total{reason="body_timeout"}') == 1


def test_trickled_headers_and_silent_connections_are_closed(autoheal_factory):
    """Headers trickled a byte at a time get 408 at the header deadline; a connection that sends nothing is closed."""
    svc = autoheal_factory(env={"AUTOHEAL_HTTP_HEADER_TIMEOUT": "1"})
    silent = _connect(svc)
    trickle = _connect(svc)
    try:
        trickle.sendall(b"POST /v1/traces HTTP/1.1\r\n")
        header = b"X-Slow: " + b"a" * 10_000
        answered = b""
        give_up = time.monotonic() + DEADLINE
        for byte in header:
            if time.monotonic() > give_up:
                break
            readable, _, _ = select.select([trickle], [], [], 0.05)  # one byte per 50 ms unless answered
            if readable:
                answered = trickle.recv(65536)
                break
            trickle.sendall(bytes([byte]))
        assert answered.startswith(b"HTTP/1.1 408"), answered
        assert b"http_header_timeout" in answered
        assert _closed_by_server(trickle)
        assert _closed_by_server(silent)
        assert _healthy(svc)
    finally:
        silent.close()
        trickle.close()


def test_oversized_headers_get_431(autoheal):
    """Request headers beyond 64 KiB (in lines the old server accepted) get 431 and the connection is closed."""
    sock = _connect(autoheal)
    try:
        headers = {f"X-Filler-{i}": "b" * 2000 for i in range(60)}
        sock.sendall(_request("GET", "/healthz", b"", headers))
        status, _, body = _read_response(sock)
        assert status == 431, body
        assert _closed_by_server(sock)
    finally:
        sock.close()
    assert _healthy(autoheal)


def test_chunked_body_is_accepted_and_its_error_recorded(autoheal):
    """A chunked request body (as Node's SDK sends) is accepted and its exception becomes an issue."""
    body = _failing_trace("sent in chunks")
    chunks = [body[i:i + 100] for i in range(0, len(body), 100)]
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    sock = _connect(autoheal)
    try:
        sock.sendall(_request("POST", "/v1/traces", encoded,
                              {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}))
        status, _, answer = _read_response(sock)
        assert status == 200, answer
    finally:
        sock.close()
    assert autoheal.wait_for_issues(1)[0]["title"].find("sent in chunks") >= 0


def test_chunked_body_over_the_limit_gets_413_while_streaming(autoheal_factory):
    """A chunked body is cut off with 413 as soon as it exceeds max_request_bytes, long before it ends."""
    svc = autoheal_factory(env={"AUTOHEAL_MAX_REQUEST_BYTES": "100000"})
    sock = _connect(svc)
    sent = 0
    chunk = b"a" * 16_384
    try:
        sock.sendall(_request("POST", "/v1/traces", b"",
                              {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}))
        answer = b""
        while sent < 50_000_000:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        status, _, answer = _read_response(sock)
        assert status == 413, answer
        assert b"max_request_bytes" in answer
        assert sent < 10_000_000  # cut off while streaming, not after reading everything
    finally:
        sock.close()
    assert _healthy(svc)


def test_content_length_with_transfer_encoding_is_refused_and_closed(autoheal):
    """Content-Length plus Transfer-Encoding (a smuggling shape) gets 400, the connection is closed and nothing after it is served."""
    sock = _connect(autoheal)
    try:
        sock.sendall(_request("POST", "/v1/traces", b"{}" + _request("GET", "/healthz"),
                              {"Content-Type": "application/json", "Content-Length": "2",
                               "Transfer-Encoding": "chunked"}))
        status, _, _ = _read_response(sock)
        assert status == 400
        assert _closed_by_server(sock)  # the smuggled GET /healthz got no answer
    finally:
        sock.close()
    assert _healthy(autoheal)


def test_duplicate_or_conflicting_content_length_is_refused(autoheal):
    """Two Content-Length headers, equal or not, get 400 and a closed connection."""
    for lengths in (("2", "2"), ("2", "40")):
        sock = _connect(autoheal)
        try:
            sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         + b"".join(b"Content-Length: %s\r\n" % n.encode() for n in lengths) + b"\r\n{}")
            status, _, _ = _read_response(sock)
            assert status == 400, lengths
            assert _closed_by_server(sock)
        finally:
            sock.close()
    assert autoheal.metric('autoheal_requests_rejected_total{reason="malformed_http"}') == 2


def test_deeply_nested_json_gets_400_and_the_service_stays_healthy(autoheal):
    """JSON nested far too deep (100,000 and 500 levels) gets 400 naming the depth limit, and ingest goes on."""
    for depth in (100_000, 500):
        body = b'{"resourceSpans": ' + b"[" * depth + b"]" * depth + b"}"
        status, answer = post(f"{autoheal.http_endpoint}/v1/traces", body)
        assert status == 400, answer
        assert "nested deeper than 128 levels" in json.loads(answer)["message"]
    assert _healthy(autoheal)
    # Legitimately nested data (20 nested AnyValue maps, about 90 JSON levels) is still accepted.
    value: dict = {"stringValue": "leaf"}
    for _ in range(20):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    payload = json.loads(_failing_trace("after deep json"))
    payload["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"].append({"key": "nested", "value": value})
    assert post(f"{autoheal.http_endpoint}/v1/traces", json.dumps(payload).encode())[0] == 200
    autoheal.wait_for_issues(1)
    assert "RecursionError" not in autoheal.log_text()


def test_protobuf_replies_have_the_signal_s_type(autoheal):
    """Partial success on /v1/logs parses as ExportLogsServiceResponse, on /v1/traces as ExportTraceServiceResponse; errors as google.rpc.Status."""
    logs = ExportLogsServiceRequest()
    scope = logs.resource_logs.add().scope_logs.add()
    scope.log_records.add(trace_id=b"\x01\x02\x03\x04", body={"string_value": "malformed trace id"})
    good = scope.log_records.add(trace_id=bytes.fromhex(new_trace_id()), body={"string_value": "fine"})
    good.attributes.add(key="exception.type").value.string_value = "KeyError"
    status, answer = post(f"{autoheal.http_endpoint}/v1/logs", logs.SerializeToString(), "application/x-protobuf")
    assert status == 200
    reply = ExportLogsServiceResponse.FromString(answer)
    assert reply.partial_success.rejected_log_records == 1
    assert "wrong length" in reply.partial_success.error_message

    traces = ExportTraceServiceRequest()
    scope_spans = traces.resource_spans.add().scope_spans.add()
    scope_spans.spans.add(name="bad", trace_id=b"\x01\x02", span_id=b"\x01" * 8)
    status, answer = post(f"{autoheal.http_endpoint}/v1/traces", traces.SerializeToString(), "application/x-protobuf")
    assert status == 200
    assert ExportTraceServiceResponse.FromString(answer).partial_success.rejected_spans == 1

    status, answer = post(f"{autoheal.http_endpoint}/v1/logs", b"\x0a\xff\xff\xff\xff\x0f", "application/x-protobuf")
    assert status == 400
    error = Status.FromString(answer)
    assert error.code == 3 and "protobuf" in error.message
    assert autoheal.wait_for_issues(1)[0]["exception_type"] == "KeyError"


def test_connection_limit_answers_503_to_the_excess_while_others_work(autoheal_factory):
    """Beyond http_max_connections a request gets 503 and is closed; the connections within the limit keep working."""
    svc = autoheal_factory(env={"AUTOHEAL_HTTP_MAX_CONNECTIONS": "3"})
    held = [_connect(svc) for _ in range(3)]
    try:
        for sock in held:
            sock.sendall(_request("GET", "/healthz"))
            assert _read_response(sock)[0] == 200
        extra = _connect(svc)
        try:
            extra.sendall(_request("GET", "/healthz"))
            assert _read_response(extra)[0] == 503
            assert _closed_by_server(extra)
        finally:
            extra.close()
        for sock in held:
            sock.sendall(_request("POST", "/v1/traces", body := _failing_trace("within the limit"),
                                  {"Content-Type": "application/json", "Content-Length": str(len(body))}))
            assert _read_response(sock)[0] == 200
    finally:
        for sock in held:
            sock.close()
    # Once the held connections are gone, new ones are served again.
    wait_for(lambda: post(f"{svc.http_endpoint}/v1/traces", _failing_trace("after"))[0] == 200, DEADLINE,
             message="a new connection to be served")


def test_metrics_token_protects_metrics(autoheal_factory):
    """With metrics_token set, /metrics needs that bearer token; ingest and /healthz are unaffected."""
    svc = autoheal_factory(env={"AUTOHEAL_METRICS_TOKEN": "scrape-s3cret"})
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        try:
            urllib.request.urlopen(urllib.request.Request(f"{svc.http_endpoint}/metrics", headers=headers),
                                   timeout=DEADLINE)
            raise AssertionError("/metrics answered without the token")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
            assert exc.headers["WWW-Authenticate"] == "Bearer"
    request = urllib.request.Request(f"{svc.http_endpoint}/metrics",
                                     headers={"Authorization": "Bearer scrape-s3cret"})
    with urllib.request.urlopen(request, timeout=DEADLINE) as response:
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert b"autoheal_spans_received_total" in response.read()
    assert post(f"{svc.http_endpoint}/v1/traces", _failing_trace("with metrics token"))[0] == 200
    assert _healthy(svc)


def test_busy_http_port_is_a_one_line_error_naming_the_setting(tmp_path):
    """An HTTP port already in use stops start-up with exit code 2 and one line naming the address and the setting."""
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "otel_autoheal", "serve", "--otlp-grpc", "127.0.0.1:0",
             "--otlp-http", f"127.0.0.1:{port}", "--state", str(tmp_path / "state")],
            capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 2
    message = result.stderr.strip().splitlines()[-1]
    assert f"otlp_http: cannot listen on 127.0.0.1:{port}" in message
    assert "--otlp-http" in message and "AUTOHEAL_OTLP_HTTP" in message
    assert "Traceback" not in result.stderr


def test_http_limits_are_validated_with_their_key():
    """Each HTTP bound refuses a non-positive value with an error naming its key, and has its documented default."""
    defaults = load_config(env={})
    assert (defaults.http_header_timeout, defaults.http_body_timeout, defaults.http_keepalive_timeout,
            defaults.http_max_connections, defaults.metrics_token) == (10.0, 30.0, 15.0, 1000, "")
    for key in ("http_header_timeout", "http_body_timeout", "http_keepalive_timeout", "http_max_connections"):
        with pytest.raises(ConfigError) as info:
            load_config(env={f"AUTOHEAL_{key.upper()}": "0"})
        assert info.value.key == key
