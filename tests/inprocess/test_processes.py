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


def test_processes_sharing_a_state_dir_file_one_issue(tmp_path: Path) -> None:
    """N processes recording the same new error at the same moment end with one group counted N times."""
    count = 4
    state, go = tmp_path / "state", tmp_path / "go"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    procs = [subprocess.Popen([sys.executable, str(script), str(state), str(go), str(tmp_path / f"ready{i}")],
                              cwd=REPO, env=clean_env(), stderr=subprocess.PIPE, start_new_session=True)
             for i in range(count)]
    try:
        wait_for(lambda: all((tmp_path / f"ready{i}").exists() for i in range(count)), timeout=120,
                 message="every worker to open the state")
        go.touch()
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err.decode()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    issues = read_issues(state)
    assert [(i["title"], i["count"]) for i in issues] == [("[autoheal] RuntimeError: ledger locked for invoice <num>", count)]
    assert len(issues[0]["trace_ids"]) == count


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
