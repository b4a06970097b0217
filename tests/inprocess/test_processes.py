"""Several application processes sharing one state directory, and forked workers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from inprocess_support import REPO, _isolated_env, clean_env, read_issues  # noqa: F401
from polling import wait_for

WORKER = textwrap.dedent('''
    import os, sys, time
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from otel_autoheal.exporters import AutohealSpanExporter

    state_dir, go, ready = sys.argv[1], sys.argv[2], sys.argv[3]
    provider = TracerProvider(resource=Resource.create({"service.name": "billing"}))
    exporter = AutohealSpanExporter(state_dir=state_dir, trace_wait=0.05)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    exporter.engine.store.groups()  # the state database is open before the race starts
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.01)

    def settle(invoice):
        raise RuntimeError(f"ledger locked for invoice {invoice}")

    try:
        with provider.get_tracer("billing").start_as_current_span("settle"):
            settle(os.getpid())
    except RuntimeError:
        pass
    provider.shutdown()
''')


def _race(tmp_path: Path, script_text: str, count: int, state: Path) -> None:
    """Run ``count`` copies of a worker (argv: state dir, go file, ready file) released together once all
    are ready; each must exit 0. A worker's stderr goes to a file, so a chatty one cannot block on a pipe."""
    go = tmp_path / "go"
    go.unlink(missing_ok=True)
    script = tmp_path / "worker.py"
    script.write_text(script_text)
    ready = [tmp_path / f"ready{i}" for i in range(count)]
    errors = [tmp_path / f"stderr{i}" for i in range(count)]
    for path in ready:
        path.unlink(missing_ok=True)
    procs = []
    try:
        for i in range(count):
            with errors[i].open("wb") as err:
                procs.append(subprocess.Popen([sys.executable, str(script), str(state), str(go), str(ready[i])],
                                              cwd=REPO, env=clean_env(), stderr=err, start_new_session=True))

        def all_ready() -> bool:
            for proc, err in zip(procs, errors, strict=True):
                assert proc.poll() is None, f"a worker exited before the race: {err.read_text()[-3000:]}"
            return all(path.exists() for path in ready)

        wait_for(all_ready, timeout=120, message="every worker to be ready")
        go.touch()
        for proc, err in zip(procs, errors, strict=True):
            proc.wait(timeout=120)
            assert proc.returncode == 0, err.read_text()[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_processes_sharing_a_state_dir_file_one_issue(tmp_path: Path) -> None:
    """N processes recording the same new error at the same moment end with one group counted N times."""
    count = 4
    state = tmp_path / "state"
    _race(tmp_path, WORKER, count, state)
    issues = read_issues(state)
    assert [(i["title"], i["count"]) for i in issues] == [("[autoheal] RuntimeError: ledger locked for invoice <num>", count)]
    assert len(issues[0]["trace_ids"]) == count


OPENING = textwrap.dedent('''
    import os, sys, time
    from otel_autoheal.state.sqlite import SQLiteStore

    state_dir, go, ready = sys.argv[1], sys.argv[2], sys.argv[3]
    open(ready, "w").close()
    while not os.path.exists(go):
        time.sleep(0.001)
    store = SQLiteStore.in_dir(state_dir)
    store.groups()
    store.close()
''')


def test_processes_opening_a_new_state_file_at_once_all_open_it(tmp_path: Path) -> None:
    """Twelve processes opening one new state file at the same moment all open it, round after round."""
    for round_ in range(6):  # (before the fix, about one round in four lost a process to SQLITE_BUSY)
        _race(tmp_path, OPENING, 12, tmp_path / f"state{round_}")


FORKING = textwrap.dedent('''
    import os, sys
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from otel_autoheal.exporters import AutohealSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": "web"}))
    provider.add_span_processor(BatchSpanProcessor(AutohealSpanExporter(state_dir=sys.argv[1], trace_wait=0.05)))
    tracer = provider.get_tracer("web")

    def fail(kind):
        try:
            with tracer.start_as_current_span("request"):
                raise kind("worker failed")
        except kind:
            pass

    fail(LookupError)  # the parent's engine is running when it forks, as in a pre-fork server
    pid = os.fork()
    if pid == 0:
        fail(TimeoutError)
        provider.shutdown()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    provider.shutdown()
    sys.exit(os.waitstatus_to_exitcode(status))
''')


def test_forked_worker_files_its_own_errors(tmp_path: Path) -> None:
    """A child forked after the exporter started builds its own engine and records into the same state dir."""
    script = tmp_path / "forking.py"
    script.write_text(FORKING)
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "state")], cwd=REPO, env=clean_env(),
                            capture_output=True, timeout=120)  # a child hung on inherited locks fails here
    assert result.returncode == 0, result.stderr.decode()
    titles = sorted(i["title"] for i in read_issues(tmp_path / "state"))
    assert titles == ["[autoheal] LookupError: worker failed", "[autoheal] TimeoutError: worker failed"]
