"""Start-up and state: every failure is one line and exit 2, a failed start creates nothing, the
database is checked, repaired, migrated and watched, and groups carry the errors' own times."""

from __future__ import annotations

import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from otlp_payloads import new_span_id, new_trace_id, post, span, traces_payload
from polling import wait_for

REPO = Path(__file__).resolve().parents[2]
TRACE_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
HOUR_NANOS = 3600 * 10**9


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GH_", "AUTOHEAL_", "OTEL_"))}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "otel_autoheal", *args], capture_output=True, text=True,
                          timeout=90, cwd=REPO, env=_env())


def _serve(state: Path, grpc_addr: str = "127.0.0.1:0", http_addr: str = "127.0.0.1:0") -> subprocess.CompletedProcess[str]:
    return _cli("serve", "--otlp-grpc", grpc_addr, "--otlp-http", http_addr, "--state", str(state))


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command failed with exit code 2 and exactly one line on stderr, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def _send_errors(url: str, types: list[str], start: int | None = None) -> None:
    spans = [span(new_trace_id(), new_span_id(), f"op {t}", start=start,
                  exception={"type": t, "message": f"{t} happened", "stacktrace": f'File "/app/{t}.py", line 1, in run'})
             for t in types]
    assert post(f"{url}/v1/traces", traces_payload(spans))[0] == 200


def _real_state(autoheal_factory: Any, state: Path, groups: int) -> None:
    """A state database written by the real service, cleanly stopped (WAL checkpointed)."""
    svc = autoheal_factory(state_dir=state)
    _send_errors(svc.http_endpoint, [f"Error{i}" for i in range(groups)])
    svc.wait_for_issues(groups)
    svc.stop()
    assert not Path(f"{state}/autoheal.sqlite3-wal").exists()


def _garble(db: Path, pages: list[int]) -> None:
    """Random bytes over whole pages (1-based), leaving every other page intact."""
    page_size = int.from_bytes(db.read_bytes()[16:18], "big")
    rnd = random.Random(1234)
    with open(db, "r+b") as handle:
        for page in pages:
            handle.seek((page - 1) * page_size)
            handle.write(rnd.randbytes(page_size))


def _group_leaf_pages(db: Path) -> list[int]:
    """Pages holding rows of the groups table (SQLite's dbstat table, where compiled in; else the middle pages)."""
    with sqlite3.connect(db) as conn:
        try:
            pages = [int(r[0]) for r in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = 'groups' AND pagetype = 'leaf' ORDER BY pageno")]
        except sqlite3.OperationalError:
            pages = list(range(2, _page_count(db) + 1))
    conn.close()
    return pages


def _page_count(db: Path) -> int:
    return db.stat().st_size // int.from_bytes(db.read_bytes()[16:18], "big")


def _health(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_corrupt_pages_are_refused_by_every_command(autoheal_factory, tmp_path):
    """Garbage over pages 2..n of a real state file: serve, issues, show and status each refuse in one line with a repair hint."""
    state = tmp_path / "state"
    _real_state(autoheal_factory, state, 20)
    db = state / "autoheal.sqlite3"
    _garble(db, list(range(2, _page_count(db) + 1)))
    for command in (["serve", "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0"], ["issues"],
                    ["show", "1"], ["status"]):
        line = _one_line(_cli(*command, "--state", str(state)))
        assert str(db) in line and "damaged" in line and "otel-autoheal repair" in line, (command, line)


def test_repair_moves_the_damaged_file_aside_and_salvages_rows(autoheal_factory, tmp_path):
    """`otel-autoheal repair` keeps the damaged file as a backup, rebuilds the readable groups, and serve starts again."""
    state = tmp_path / "state"
    _real_state(autoheal_factory, state, 40)
    db = state / "autoheal.sqlite3"
    _garble(db, _group_leaf_pages(db)[10:12])
    damaged = db.read_bytes()
    assert _cli("issues", "--state", str(state)).returncode == 2

    result = _cli("repair", "--state", str(state))
    assert result.returncode == 0, result.stderr
    backups = list(state.glob("autoheal.sqlite3.damaged-*"))
    assert [b.read_bytes() == damaged for b in backups] == [True]
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    conn.close()
    listed = json.loads(_cli("issues", "--json", "--state", str(state)).stdout)
    assert 0 < len(listed) < 40  # the rows on the two garbled pages are lost, the others saved
    assert f"groups: {len(listed)} rows saved" in result.stdout
    assert all(issue["title"] == f"[autoheal] {issue['exception_type']}: {issue['exception_type']} happened"
               for issue in listed)
    autoheal_factory(state_dir=state)  # starts and reports healthy


def test_busy_grpc_port_held_by_another_program(tmp_path):
    """A gRPC port taken by a plain listener: one line naming the setting and the address; nothing is created."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        state = tmp_path / "new" / "state"
        line = _one_line(_serve(state, grpc_addr=f"127.0.0.1:{port}"))
    assert line.startswith("otel-autoheal: otlp_grpc: cannot listen on 127.0.0.1:") and f":{port}" in line
    assert "--otlp-grpc" in line and "AUTOHEAL_OTLP_GRPC" in line
    assert not (tmp_path / "new").exists()


def test_busy_http_port_leaves_no_database(tmp_path):
    """An HTTP port in use: one line naming otlp_http and the address; an existing state dir gets no half-made database."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        line = _one_line(_serve(tmp_path, http_addr=f"127.0.0.1:{port}"))
    assert f"otlp_http: cannot listen on 127.0.0.1:{port}" in line and "--otlp-http" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_second_instance_on_the_same_grpc_port_fails_and_the_first_keeps_serving(autoheal_factory, tmp_path):
    """No SO_REUSEPORT: a second serve on the first one's gRPC port refuses to start; the first still takes gRPC exports."""
    first = autoheal_factory()
    line = _one_line(_serve(tmp_path / "second", grpc_addr=first.grpc_endpoint))
    assert f"otlp_grpc: cannot listen on {first.grpc_endpoint}" in line
    assert not (tmp_path / "second").exists()
    request = ExportTraceServiceRequest()
    failed = request.resource_spans.add().scope_spans.add().spans.add(
        name="after-the-second", trace_id=bytes.fromhex(new_trace_id()), span_id=bytes.fromhex(new_span_id()))
    failed.status.code = 2
    with grpc.insecure_channel(first.grpc_endpoint) as channel:
        channel.unary_unary(TRACE_METHOD, request_serializer=None, response_deserializer=None)(
            request.SerializeToString(), timeout=10)
    first.wait_for_issues(1)


def test_state_dir_that_cannot_be_created_or_opened(tmp_path):
    """A state dir under a regular file, or a database path that is a directory: one line naming the path, exit 2."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    line = _one_line(_serve(blocker / "sub"))
    assert str(blocker / "sub") in line and "AUTOHEAL_STATE_DIR" in line
    (tmp_path / "dir" / "autoheal.sqlite3").mkdir(parents=True)
    line = _one_line(_serve(tmp_path / "dir"))
    assert str(tmp_path / "dir" / "autoheal.sqlite3") in line


def _foreign_db(path: Path) -> bytes:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE theirs (x TEXT)")
        conn.execute("INSERT INTO theirs VALUES ('somebody else''s data')")
    conn.close()
    return path.read_bytes()



@pytest.mark.parametrize("how", ["renamed over", "overwritten in place", "deleted"])
def test_database_replaced_while_running_is_noticed_and_left_alone(autoheal_factory, tmp_path, how):
    """The state file replaced, overwritten or deleted under a running service: logged, /healthz 503, no more writes to it."""
    svc = autoheal_factory()
    _send_errors(svc.http_endpoint, ["BeforeError"])
    svc.wait_for_issues(1)
    assert _health(svc.http_endpoint)[0] == 200
    db = svc.state_dir / "autoheal.sqlite3"
    foreign = _foreign_db(tmp_path / "foreign.sqlite3")
    if how == "renamed over":
        os.replace(tmp_path / "foreign.sqlite3", db)
    elif how == "overwritten in place":
        with open(db, "r+b") as handle:
            handle.truncate(0)
            handle.write(foreign)
    else:
        db.unlink()

    _status, body = wait_for(lambda: (lambda h: h if h[0] == 503 else None)(_health(svc.http_endpoint)), 30,
                            message="/healthz 503")
    assert body["status"] == "error" and str(db) in body["error"]
    wait_for(lambda: f"state database {db} was" in svc.log_text(), 30, message="error log naming the file")
    # Nothing can be made durable any more: the export is refused (the sender keeps it and retries).
    after = [span(new_trace_id(), new_span_id(), "op AfterError",
                  exception={"type": "AfterError", "message": "after", "stacktrace": 'File "/app/a.py", line 1, in run'})]
    assert post(f"{svc.http_endpoint}/v1/traces", traces_payload(after))[0] == 503
    svc.stop()
    assert svc.proc is not None and svc.proc.returncode == 2
    assert not Path(f"{db}-wal").exists()  # never left to be replayed onto whatever is at the path
    if how == "deleted":
        assert not db.exists()
        return
    assert db.read_bytes() == foreign
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT x FROM theirs").fetchall() == [("somebody else's data",)]
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'groups'").fetchall() == []
    conn.close()


#: The CREATE statements of the state schema before it had a version (``PRAGMA user_version`` 0).
_SCHEMA_V0 = """
CREATE TABLE groups (
    id INTEGER PRIMARY KEY AUTOINCREMENT, fingerprint TEXT NOT NULL UNIQUE, title TEXT NOT NULL,
    body TEXT NOT NULL, count INTEGER NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
    service TEXT NOT NULL, exception_type TEXT NOT NULL, source TEXT NOT NULL, grouping_fields TEXT NOT NULL
);
CREATE TABLE group_versions (
    group_id INTEGER NOT NULL REFERENCES groups(id), version TEXT NOT NULL, first_seen REAL NOT NULL,
    PRIMARY KEY (group_id, version)
);
CREATE TABLE intake_journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT, trace_id TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,
    received REAL NOT NULL
);
CREATE INDEX intake_journal_trace ON intake_journal (trace_id);
CREATE TABLE group_traces (
    group_id INTEGER NOT NULL REFERENCES groups(id), trace_id TEXT NOT NULL, seen REAL NOT NULL,
    PRIMARY KEY (group_id, trace_id)
);
"""


def test_schema_migration_from_an_unversioned_database_and_refusal_of_a_newer_one(autoheal_factory, tmp_path):
    """A database of the first schema is migrated (processing times kept as both figures); a newer schema is refused."""
    state = tmp_path / "state"
    state.mkdir()
    db = state / "autoheal.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.executescript(_SCHEMA_V0)
        conn.execute("INSERT INTO groups (fingerprint, title, body, count, first_seen, last_seen, service,"
                     " exception_type, source, grouping_fields) VALUES ('f', 'OldError: x', 'b', 3, 1.7e9,"
                     " 1.7e9 + 60, 'svc', 'OldError', '', '[]')")
    conn.close()
    [old] = json.loads(_cli("issues", "--json", "--state", str(state)).stdout)
    assert (old["first_seen"], old["last_seen"]) == ("2023-11-14T22:13:20+00:00", "2023-11-14T22:14:20+00:00")
    assert (old["first_processed"], old["last_processed"]) == (old["first_seen"], old["last_seen"])
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)
    conn.close()
    svc = autoheal_factory(state_dir=state)
    _send_errors(svc.http_endpoint, ["NewError"])
    assert {i["exception_type"] for i in svc.wait_for_issues(2)} == {"OldError", "NewError"}
    svc.stop()

    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    conn.close()
    for command in (["issues"], ["serve", "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0"]):
        line = _one_line(_cli(*command, "--state", str(state)))
        assert str(db) in line and "schema version 99" in line and "upgrade otel-autoheal" in line


def _parse(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def test_groups_carry_the_errors_own_time_with_processing_time_alongside(autoheal):
    """An exception event from two hours ago is first/last seen then, processed now; a far-future clock is not believed."""
    before = time.time()
    two_hours_ago = time.time_ns() - 2 * HOUR_NANOS
    _send_errors(autoheal.http_endpoint, ["PastError"], start=two_hours_ago)
    _send_errors(autoheal.http_endpoint, ["FutureError"], start=time.time_ns() + 24 * HOUR_NANOS)
    issues = {i["exception_type"]: i for i in autoheal.wait_for_issues(2)}
    past, future = issues["PastError"], issues["FutureError"]
    event_seconds = (two_hours_ago + 500_000) // 10**9  # the exception event is 0.5 ms after the span start
    assert _parse(past["first_seen"]) == _parse(past["last_seen"]) == event_seconds
    assert _parse(past["first_processed"]) >= int(before) and past["first_processed"] == past["last_processed"]
    assert future["first_seen"] == future["first_processed"]
    table = subprocess.run([sys.executable, "-m", "otel_autoheal", "issues", "--state", str(autoheal.state_dir)],
                           capture_output=True, text=True, check=True, cwd=REPO, env=_env()).stdout
    [row] = [line for line in table.splitlines() if "PastError" in line]
    assert past["last_seen"][:19] in row
