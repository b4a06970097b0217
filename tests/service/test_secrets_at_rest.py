"""Nothing unscrubbed at rest: the state files and the CLI spool never hold a raw secret, even after SIGKILL."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from otlp_payloads import log_record, logs_payload, new_span_id, new_trace_id, post, span, traces_payload
from polling import wait_for
from test_scrubber import CORPUS, KNOWN_ID_LINES, _fragments, _gitleaks_findings

REPO = Path(__file__).resolve().parents[2]
TEXTS = [e["input"] for e in CORPUS if e["kind"] == "text"]
SECRETS = sorted({fragment for e in CORPUS for secret in e["secrets"] for fragment in _fragments(secret)})
#: Ways a secret may be spelled in a file: as is, and escaped as in the journal's JSON payloads.
SPELLINGS = sorted({s.encode() for s in SECRETS} | {json.dumps(s)[1:-1].encode() for s in SECRETS})


def _corpus_span() -> dict[str, Any]:
    """A failed span whose name, status, attributes and exception carry the whole corpus."""
    attributes: dict[str, Any] = {f"app.payload.{i}": json.dumps(e["input"]) for i, e in enumerate(CORPUS) if e["kind"] == "json"}
    attributes.update({f"app.argv.{i}": e["input"] for i, e in enumerate(CORPUS) if e["kind"] == "argv"})
    stack = 'Traceback (most recent call last):\n  File "/app/main.py", line 3, in main\n    run()\n' + "\n".join(TEXTS)
    return span(new_trace_id(), new_span_id(), f"GET /reset?{TEXTS[0]}", attributes=attributes,
                exception={"type": "RuntimeError", "message": "\n".join(TEXTS[:20]), "stacktrace": stack})


def _corpus_log() -> dict[str, Any]:
    """An exception log (no trace) carrying the corpus in its body and exception attributes."""
    return log_record("\n".join(TEXTS[20:]), severity="ERROR", severity_number=17, attributes={
        "exception.type": "ValueError", "exception.message": "\n".join(TEXTS[10:30]),
        "exception.stacktrace": "\n".join(TEXTS), "db.password": "hunter2-hunter2"})


def _raw_hits(directory: Path) -> dict[str, list[str]]:
    """Every file under ``directory`` (db, -wal, -shm, journal, spool, logs) that holds a raw secret."""
    hits: dict[str, list[str]] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found = [s.decode() for s in SPELLINGS if s in data]
        if found:
            hits[str(path.relative_to(directory))] = found
    return hits


def _printable_copy(sources: list[Path], target: Path) -> Path:
    """Copy ``sources`` and, beside each, its runs of printable text: gitleaks skips binary files,
    so the SQLite files are also scanned as the text they contain (like ``strings``)."""
    target.mkdir(parents=True)
    for index, path in enumerate(sources):
        data = path.read_bytes()
        (target / f"{index}-{path.name}").write_bytes(data)
        runs = re.findall(rb"[\x20-\x7e\t]{6,}", data)
        # A header first: a file starting "SQLite format 3" would again be taken for a database.
        header = f"printable text of {path.name}:\n".encode()
        (target / f"{index}-{path.name}.strings.txt").write_bytes(header + b"\n".join(runs) + b"\n")
    return target


#: The scrubber test's known-id exclusions, plus the one layout they miss: ``issues --json`` prints
#: its ``trace_ids`` list one quoted 32-hex trace id per line. Every plugin stays on.
ID_LINES = KNOWN_ID_LINES + r'|^\s*"[0-9a-f]{32}",?$'


def _detect_secrets_findings(directory: Path) -> list[dict[str, Any]]:
    out = subprocess.run([str(Path(sys.executable).parent / "detect-secrets"), "scan", "--all-files",
                          "--exclude-lines", ID_LINES, str(directory)],
                         check=True, timeout=300, capture_output=True, text=True, cwd=directory)
    return [finding for findings in json.loads(out.stdout)["results"].values() for finding in findings]


def _oracle_findings(directory: Path) -> dict[str, list[Any]]:
    return {"gitleaks": _gitleaks_findings(directory), "detect-secrets": _detect_secrets_findings(directory)}


def test_scrubbing_scrubbed_data_changes_nothing() -> None:
    """The journal holds scrubbed records that the pipeline scrubs again: a second pass must keep every
    ``[redacted:x]`` and everything else as the first pass left it, for texts, JSON values and argv."""
    from otel_autoheal.scrub import Scrubber

    scrubber = Scrubber()
    changed = {}
    for entry in CORPUS:
        data = entry["input"]
        for name, scrub in (("text", scrubber.text), ("value", scrubber.value), ("argv", scrubber.argv)):
            if (name == "text") != isinstance(data, str) or (name == "argv" and not isinstance(data, list)):
                continue
            once = scrub(data)
            if scrub(once) != once:
                changed[f"{entry['category']}/{name}"] = (once, scrub(once))
        attributes = scrubber.attributes({"payload": data, "db.password": "x" * 12})
        if scrubber.attributes(attributes) != attributes:
            changed[f"{entry['category']}/attributes"] = attributes
    assert changed == {}


def test_oracles_see_secrets_in_raw_sqlite_and_spool_like_files(tmp_path: Path) -> None:
    """The file oracle (raw copy + printable runs) finds the raw corpus when it sits in a SQLite database."""
    db = tmp_path / "raw" / "state.db"
    db.parent.mkdir()
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (payload TEXT)")
        conn.executemany("INSERT INTO t VALUES (?)", [(json.dumps(e["input"]),) for e in CORPUS])
    conn.close()
    assert _raw_hits(db.parent)
    findings = _oracle_findings(_printable_copy([db], tmp_path / "scan"))
    assert findings["gitleaks"] and findings["detect-secrets"]


class _Sender:
    """Posts corpus-carrying spans and exception logs until stopped (or the service dies)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.acknowledged = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, _ = post(f"{self.endpoint}/v1/traces", traces_payload([_corpus_span()],
                                                                              resource={"service.name": "svc"}))
                status_logs, _ = post(f"{self.endpoint}/v1/logs", logs_payload([_corpus_log()]))
            except OSError:
                return  # killed
            self.acknowledged += (status == 200) + (status_logs == 200)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


@pytest.mark.timeout(900)
def test_no_raw_secret_on_disk_across_sigkills(autoheal_factory: Callable[..., Any], tmp_path: Path) -> None:
    """Errors full of secrets, SIGKILL at random points, restarts: no file in the state dir ever holds a
    raw secret, and gitleaks/detect-secrets find nothing in the state files or ``issues --json``."""
    rng = random.Random(1313)
    state = tmp_path / "state"
    for _ in range(4):
        # A long trace wait keeps acknowledged errors in the journal only, when the kill comes.
        svc = autoheal_factory(state_dir=state, trace_wait=rng.choice([0.2, 30.0]))
        sender = _Sender(svc.http_endpoint)
        try:
            wait_for(lambda: sender.acknowledged >= 1, 60, message="a request acknowledged")  # noqa: B023
            threading.Event().wait(rng.uniform(0.0, 1.5))  # the kill point, not a synchronisation
        finally:
            svc.stop(signal.SIGKILL)
            sender.stop()
        assert _raw_hits(state) == {}
    svc = autoheal_factory(state_dir=state)
    svc.wait_for_issues(2, timeout=120)  # the journal was replayed: the span's and the log's
    svc.stop()
    assert _raw_hits(state) == {}
    issues_json = tmp_path / "issues.json"  # exactly what `issues --json` prints
    issues_json.write_bytes(subprocess.run(
        [sys.executable, "-m", "otel_autoheal", "issues", "--json", "--state", str(state)],
        capture_output=True, check=True, cwd=REPO, env=svc.env, timeout=120).stdout)
    assert not [s for s in SPELLINGS if s in issues_json.read_bytes()]
    scan = _printable_copy([*(p for p in state.iterdir() if p.is_file()), issues_json], tmp_path / "scan")
    assert _oracle_findings(scan) == {"gitleaks": [], "detect-secrets": []}


_CLI = '''
import os, sys
from autoheal_instrumentation import instrument_cli

@instrument_cli(service_name="secretcli")
def main():
    raise RuntimeError(open(sys.argv[1], encoding="utf-8").read() + " DATABASE_URL=" + os.environ["DATABASE_URL"])

main()
'''


def test_cli_spool_holds_no_raw_secret(tmp_path: Path) -> None:
    """A failing instrumented CLI with secrets in argv, env and message spools only scrubbed data."""
    script, message, spool = tmp_path / "cli.py", tmp_path / "message.txt", tmp_path / "spool"
    script.write_text(_CLI, encoding="utf-8")
    message.write_text("\n".join(TEXTS), encoding="utf-8")
    # Option conventions any program shares (``mysql -pX`` is recognised only for mysql itself).
    generic = {"argv_flag_equals", "argv_flag_space", "argv_env_assignment"}
    argv = [a for e in CORPUS if e["category"] in generic for a in e["input"][1:]]
    dsn = next(t for t in TEXTS if "postgresql://" in t).split("to ", 1)[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AUTOHEAL_"))}
    # A secret in the resource attributes too (a deploy token put there by mistake).
    token = next(e["secrets"][0] for e in CORPUS if e["category"] == "json_list_of_pairs")
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", AUTOHEAL_SPOOL_DIR=str(spool), DATABASE_URL=dsn,
               OTEL_RESOURCE_ATTRIBUTES=f"deployment.environment=prod,deploy.token={token}",
               PYTHONPATH=f"{REPO / 'instrumentation' / 'src'}{os.pathsep}{env.get('PYTHONPATH', '')}")
    proc = subprocess.run([sys.executable, str(script), str(message), *argv], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert [p for p in spool.iterdir() if ".otlp" in p.name]  # the error was spooled
    assert _raw_hits(spool) == {}
    scan = _printable_copy([p for p in spool.iterdir() if p.is_file()], tmp_path / "scan")
    assert _oracle_findings(scan) == {"gitleaks": [], "detect-secrets": []}


def test_cleared_journal_rows_leave_no_bytes_behind(tmp_path: Path) -> None:
    """A journal row deleted once processed is overwritten (secure_delete), not left in a free page of the file."""
    # Debian's SQLite is built with SECURE_DELETE on by default, so here this passes even without
    # the store's pragma; it guards the builds (macOS, some wheels) where the default is off.
    from otel_autoheal.state.sqlite import SQLiteStore

    marker = "journal-row-marker-" + "q7Zx" * 8
    store = SQLiteStore.in_dir(tmp_path / "state")
    try:
        # A row that stays keeps the page in use: only the deleted cell's bytes are in question.
        store.journal_add([("t" * 32, "span", json.dumps({"name": marker})), ("u" * 32, "span", "{}")])
        store.journal_done("t" * 32)
        assert [entry[1] for entry in store.journal_entries()] == ["u" * 32]
    finally:
        store.close()  # checkpoints the WAL into the database file
    assert _raw_hits_of(tmp_path / "state", [marker.encode()]) == {}


def _raw_hits_of(directory: Path, needles: list[bytes]) -> dict[str, int]:
    return {p.name: n for p in directory.iterdir() if p.is_file() and (n := sum(x in p.read_bytes() for x in needles))}
