"""End-to-end tests of CLI instrumentation: real subprocesses exporting to a real OTLP/HTTP receiver."""

from __future__ import annotations

import gzip
import os
import socket
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from _pyinstr_helpers import OtlpSink, attrs, free_port


def _error_spans(sink: OtlpSink) -> list[dict[str, Any]]:
    return [s for s in sink.spans if s["status_code"] == 2]


def _spool_files(spool_dir: Path) -> list[Path]:
    return sorted(spool_dir.glob("*.otlp*")) if spool_dir.exists() else []


def test_failing_command_exports_span_exception_and_preceding_logs(otlp_sink: OtlpSink, run_cli: Any) -> None:
    """A failing command sends one error span with the exception event, argv and the run's logs, all correlated."""
    proc = run_cli(
        ["sync", "--source", "https://bob:hunter2@example.com/m", "--token", "s3cr3t-value", "--fail"],
        otlp_sink.endpoint,
    )
    assert proc.returncode == 1
    assert "ValueError: invalid literal" in proc.stderr  # the host's own traceback still printed

    spans = otlp_sink.wait_for(_error_spans)
    assert len(spans) == 1
    span = spans[0]
    assert span["name"] == "app.py sync"
    assert span["resource"]["service.name"] == "exampleapp"
    assert span["resource"]["autoheal.source"] == "cli"
    a = span["attributes"]
    assert a["cli.command"] == "sync"
    assert a["process.exit.code"] == 1
    assert a["service.version"] == "0.1.0"
    assert a["process.runtime.version"].count(".") == 2
    assert a["error.type"] == "ValueError"
    args = a["process.command_args"]
    assert args[1:3] == ["sync", "--source"]
    assert "[redacted:token]" in args and "s3cr3t-value" not in " ".join(args)
    assert "https://bob:[redacted:url_password]@example.com/m" in args
    (event,) = [e for e in span["events"] if e["name"] == "exception"]
    assert event["attributes"]["exception.type"] == "ValueError"
    stack = event["attributes"]["exception.stacktrace"]
    assert "in _parse_manifest" in stack and stack.startswith("Traceback (most recent call last):")
    assert "autoheal_instrumentation" not in stack  # our wrapper frame is not part of the host's stack

    logs = otlp_sink.wait_for(lambda s: len(s.logs) >= 4 and s.logs)
    assert {(r["trace_id"], r["span_id"]) for r in logs} == {(span["trace_id"], span["span_id"])}
    bodies = [r["body"] for r in logs]
    assert "starting sync from https://bob:[redacted:url_password]@example.com/m" in bodies
    assert "entry 'beta' has no checksum, continuing" in bodies
    exc_logs = [r for r in logs if r["event_name"] == "exception"]
    assert len(exc_logs) == 1
    assert exc_logs[0]["attributes"]["exception.stacktrace"] == stack
    assert exc_logs[0]["attributes"]["exception.message"] == "invalid literal for int() with base 10: 'three'"
    # the preceding logs come before the exception record
    assert max(r["time"] for r in logs if r["event_name"] != "exception") <= exc_logs[0]["time"]


def test_success_sends_nothing_in_errors_only_mode(otlp_sink: OtlpSink, run_cli: Any) -> None:
    """A successful run exports nothing by default; the next failing run is the only data received."""
    ok = run_cli(["sync"], otlp_sink.endpoint)
    assert ok.returncode == 0, ok.stderr
    failed = run_cli(["sync", "--fail"], otlp_sink.endpoint)
    assert failed.returncode == 1
    otlp_sink.wait_for(_error_spans)
    assert len({s["trace_id"] for s in otlp_sink.spans}) == 1
    assert all(s["status_code"] == 2 for s in otlp_sink.spans)


def test_full_mode_exports_successful_runs(otlp_sink: OtlpSink, run_cli: Any) -> None:
    """AUTOHEAL_CLI_MODE=full traces a successful run, with its exit code and no error status."""
    proc = run_cli(["status"], otlp_sink.endpoint, AUTOHEAL_CLI_MODE="full")
    assert proc.returncode == 0
    (span,) = otlp_sink.wait_for(lambda s: s.spans)
    assert span["name"] == "app.py status"
    assert span["status_code"] == 0
    assert span["attributes"]["process.exit.code"] == 0


def test_nonzero_system_exit_is_reported_and_usage_errors_are_not(otlp_sink: OtlpSink, run_cli: Any) -> None:
    """sys.exit(3) from an error path is reported with its code; an argparse usage error (exit 2) is not."""
    usage = run_cli(["sync", "--no-such-flag"], otlp_sink.endpoint)
    assert usage.returncode == 2
    proc = run_cli(["sync", "--exit-code", "3"], otlp_sink.endpoint)
    assert proc.returncode == 3
    (span,) = otlp_sink.wait_for(_error_spans)
    assert span["attributes"]["process.exit.code"] == 3
    (event,) = span["events"]
    assert event["attributes"]["exception.type"] == "SystemExit"
    assert "giving up with exit code 3" in [r["body"] for r in otlp_sink.wait_for(lambda s: s.logs)]
    assert len(otlp_sink.spans) == 1


def test_disabled_sdk_records_nothing(run_cli: Any, spool_dir: Path) -> None:
    """OTEL_SDK_DISABLED=true leaves the CLI untouched: nothing is sent or spooled."""
    proc = run_cli(["sync", "--fail"], f"http://127.0.0.1:{free_port()}", OTEL_SDK_DISABLED="true")
    assert proc.returncode == 1
    assert _spool_files(spool_dir) == []


def test_unreachable_endpoint_spools_and_a_later_run_delivers(
    otlp_sink: OtlpSink, run_cli: Any, spool_dir: Path
) -> None:
    """With the endpoint down the CLI keeps its exit code, spools the error, and the next run sends it."""
    proc = run_cli(["sync", "--fail"], f"http://127.0.0.1:{free_port()}")
    assert proc.returncode == 1
    assert proc.elapsed < 10
    spooled = _spool_files(spool_dir)
    assert len(spooled) == 1 and spooled[0].name.endswith(".otlp")

    later = run_cli(["status"], otlp_sink.endpoint)  # a successful run of any instrumented CLI
    assert later.returncode == 0
    (span,) = otlp_sink.wait_for(_error_spans)
    assert span["attributes"]["cli.command"] == "sync"
    assert otlp_sink.wait_for(lambda s: [r for r in s.logs if r["event_name"] == "exception"])
    assert _spool_files(spool_dir) == []


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A TCP endpoint that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_hanging_endpoint_does_not_hang_the_cli(black_hole: str, run_cli: Any, spool_dir: Path, protocol: str) -> None:
    """An endpoint that never answers costs at most the export timeout; the error stays spooled."""
    proc = run_cli(["sync", "--fail"], black_hole, AUTOHEAL_EXPORT_TIMEOUT="1", OTEL_EXPORTER_OTLP_PROTOCOL=protocol)
    assert proc.returncode == 1
    assert proc.elapsed < 10
    assert len(_spool_files(spool_dir)) == 1


@pytest.fixture
def slow_first_trace_request() -> Iterator[tuple[str, list[str]]]:
    """An OTLP/HTTP receiver that holds the first traces request until another one arrives (or 3 s pass).

    Yields its endpoint and the ``deployment.environment.name`` of each traces request, in the order
    the requests were taken in.
    """
    taken: list[str] = []
    another = threading.Event()
    first = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/v1/traces":
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                if first.acquire(blocking=False):
                    another.wait(3)  # a slow service: is the next request sent meanwhile?
                else:
                    another.set()
                for rs in request.resource_spans:
                    taken.append(str(attrs(rs.resource.attributes).get("deployment.environment.name")))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", taken
    another.set()
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_spooled_errors_are_sent_before_the_runs_own(
    slow_first_trace_request: tuple[str, list[str]], run_cli: Any, spool_dir: Path
) -> None:
    """A run sends its own error only after the spooled older ones: the service sees them in the order they happened."""
    endpoint, taken = slow_first_trace_request
    old = {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=old"}
    down = run_cli(["sync", "--fail"], f"http://127.0.0.1:{free_port()}", **old)
    assert down.returncode == 1 and len(_spool_files(spool_dir)) == 1

    new = {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=new", "AUTOHEAL_EXPORT_TIMEOUT": "20"}
    later = run_cli(["sync", "--fail"], endpoint, **new)
    assert later.returncode == 1
    assert taken == ["old", "new"]
    assert _spool_files(spool_dir) == []


def test_spool_is_bounded(run_cli: Any, spool_dir: Path) -> None:
    """Unsent errors beyond AUTOHEAL_SPOOL_MAX_FILES drop the oldest ones."""
    for _ in range(3):
        assert (
            run_cli(["sync", "--fail"], f"http://127.0.0.1:{free_port()}", AUTOHEAL_SPOOL_MAX_FILES="2").returncode == 1
        )
    assert len(_spool_files(spool_dir)) == 2


def test_excepthook_style_records_and_chains_previous_hook(otlp_sink: OtlpSink, run_cli: Any, tmp_path: Path) -> None:
    """init_cli() in a plain script reports an unhandled exception and still calls the script's own excepthook."""
    script = tmp_path / "plain.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            def own_hook(t, v, tb):
                print("OWN HOOK", t.__name__, file=sys.stderr)
            sys.excepthook = own_hook
            import logging
            logging.basicConfig(level=logging.INFO)
            from autoheal_instrumentation import init_cli
            init_cli(service_name="plain")
            logging.getLogger("plain").info("about to fail")
            def deep():
                raise KeyError("missing")
            deep()
            """
        )
    )
    proc = run_cli([], otlp_sink.endpoint, script=script)
    assert proc.returncode == 1
    assert "OWN HOOK KeyError" in proc.stderr
    (span,) = otlp_sink.wait_for(_error_spans)
    assert span["resource"]["service.name"] == "plain"
    assert "in deep" in span["events"][0]["attributes"]["exception.stacktrace"]
    logs = otlp_sink.wait_for(lambda s: len(s.logs) >= 2 and s.logs)
    assert "about to fail" in [r["body"] for r in logs]


def test_explicit_service_name_wins_over_resource_attributes(otlp_sink: OtlpSink, run_cli: Any, tmp_path: Path) -> None:
    """service_name= names the resource even when OTEL_RESOURCE_ATTRIBUTES carries another service.name, as for MCP."""
    script = tmp_path / "named.py"
    script.write_text("from autoheal_instrumentation import init_cli\ninit_cli(service_name='named')\nraise KeyError('x')\n")
    proc = run_cli([], otlp_sink.endpoint, script=script,
                   OTEL_RESOURCE_ATTRIBUTES="service.name=from-resource,deployment.environment.name=ci")
    assert proc.returncode == 1
    (span,) = otlp_sink.wait_for(_error_spans)
    assert span["resource"]["service.name"] == "named"
    assert span["resource"]["deployment.environment.name"] == "ci"


def test_keyboard_interrupt_is_not_reported(run_cli: Any, tmp_path: Path, spool_dir: Path) -> None:
    """Ctrl-C (KeyboardInterrupt) is not an error report by default."""
    script = tmp_path / "interrupted.py"
    script.write_text(
        "from autoheal_instrumentation import instrument_cli\n"
        "@instrument_cli\n"
        "def main():\n"
        "    raise KeyboardInterrupt\n"
        "main()\n"
    )
    proc = run_cli([], f"http://127.0.0.1:{free_port()}", script=script)
    assert proc.returncode != 0
    assert _spool_files(spool_dir) == []


def test_click_group_subcommand(otlp_sink: OtlpSink, run_cli: Any, tmp_path: Path) -> None:
    """instrument_cli(click_group) names the span after the sub-command and reports its exception."""
    script = tmp_path / "clickapp.py"
    script.write_text(
        textwrap.dedent(
            """
            import click
            from autoheal_instrumentation import instrument_cli

            @click.group()
            @click.option("--verbose", is_flag=True)
            def cli(verbose):
                pass

            @cli.command()
            @click.argument("name")
            def greet(name):
                raise RuntimeError("cannot greet " + name)

            instrument_cli(cli, service_name="clicky")
            cli()
            """
        )
    )
    proc = run_cli(["--verbose", "greet", "ada"], otlp_sink.endpoint, script=script)
    assert proc.returncode == 1
    (span,) = otlp_sink.wait_for(_error_spans)
    assert span["name"] == "clickapp.py greet"
    assert span["events"][0]["attributes"]["exception.message"] == "cannot greet ada"


def test_grpc_protocol(otlp_sink: OtlpSink, run_cli: Any) -> None:
    """OTEL_EXPORTER_OTLP_PROTOCOL=grpc sends the same data over OTLP/gRPC."""
    endpoint = otlp_sink.start_grpc()
    proc = run_cli(["sync", "--fail"], endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="grpc")
    assert proc.returncode == 1
    (span,) = otlp_sink.wait_for(_error_spans)
    assert span["events"][0]["name"] == "exception"
    logs = otlp_sink.wait_for(lambda s: s.logs)
    assert {r["span_id"] for r in logs} == {span["span_id"]}
    assert otlp_sink.requests == ["grpc:traces", "grpc:logs"]


def test_instrumented_import_does_not_load_the_sdk(tmp_path: Path) -> None:
    """Starting an instrumented CLI loads neither the OTel SDK, protobuf, urllib nor logging."""
    import subprocess
    import sys

    code = (
        "import sys, autoheal_instrumentation as a; a.init_cli(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('opentelemetry','google','urllib','logging','threading','typing','grpc','requests')))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AUTOHEAL_"))}
    env["AUTOHEAL_SPOOL_DIR"] = str(tmp_path / "empty-spool")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = eval(out.stdout)  # noqa: S307 - our own repr of a list of str
    assert loaded == []


def test_logging_imported_after_init_is_captured(otlp_sink: OtlpSink, run_cli: Any, tmp_path: Path) -> None:
    """A CLI that imports logging only after init_cli() still has its log lines sent with the error."""
    script = tmp_path / "late_logging.py"
    script.write_text(
        textwrap.dedent(
            """
            from autoheal_instrumentation import init_cli
            init_cli(service_name="late")
            import logging
            logging.basicConfig(level=logging.INFO)
            logging.getLogger("late").info("configured late")
            raise RuntimeError("late failure")
            """
        )
    )
    proc = run_cli([], otlp_sink.endpoint, script=script)
    assert proc.returncode == 1
    assert "INFO:late:configured late" in proc.stderr  # basicConfig still works: no root handler of ours
    logs = otlp_sink.wait_for(lambda s: len(s.logs) >= 2 and s.logs)
    assert "configured late" in [r["body"] for r in logs]


def test_typer_app_subcommand(otlp_sink: OtlpSink, run_cli: Any, tmp_path: Path) -> None:
    """instrument_cli(typer_app) reports the command's exception despite typer's own exception hook."""
    script = tmp_path / "typerapp.py"
    script.write_text(
        textwrap.dedent(
            """
            import typer
            from autoheal_instrumentation import instrument_cli

            app = typer.Typer()

            @app.command()
            def hello(name: str):
                raise RuntimeError("no hello for " + name)

            @app.command()
            def bye():
                pass

            instrument_cli(app, service_name="typed")
            app()
            """
        )
    )
    proc = run_cli(["hello", "ada"], otlp_sink.endpoint, script=script)
    assert proc.returncode == 1
    (span,) = otlp_sink.wait_for(_error_spans)
    assert span["name"] == "typerapp.py hello"
    assert span["resource"]["service.name"] == "typed"
    assert "no hello for ada" in span["events"][0]["attributes"]["exception.stacktrace"]


def test_argparse_parser_only(otlp_sink: OtlpSink, run_cli: Any, tmp_path: Path) -> None:
    """instrument_cli(parser) alone starts the run at parse time and reports through the excepthook."""
    script = tmp_path / "parseronly.py"
    script.write_text(
        textwrap.dedent(
            """
            import argparse
            from autoheal_instrumentation import instrument_cli

            parser = instrument_cli(argparse.ArgumentParser(), service_name="parseronly", service_version="2.0")
            sub = parser.add_subparsers(dest="cmd")
            sub.add_parser("load").add_argument("--password")
            args = parser.parse_args()
            raise ConnectionError("database unreachable")
            """
        )
    )
    proc = run_cli(["load", "--password", "pw123"], otlp_sink.endpoint, script=script)
    assert proc.returncode == 1
    (span,) = otlp_sink.wait_for(_error_spans)
    assert span["name"] == "parseronly.py load"
    assert span["attributes"]["service.version"] == "2.0"
    assert span["attributes"]["process.command_args"][1:] == ["load", "--password", "[redacted:password]"]
    assert span["events"][0]["attributes"]["exception.type"] == "ConnectionError"


def test_exception_in_a_worker_thread_is_reported_and_exit_code_kept(
    otlp_sink: OtlpSink, run_cli: Any, tmp_path: Path
) -> None:
    """An unhandled exception in a thread is reported, the previous threading hook still runs, exit code stays 0."""
    script = tmp_path / "threaded.py"
    script.write_text(
        textwrap.dedent(
            """
            from autoheal_instrumentation import instrument_cli
            @instrument_cli(service_name="threaded")
            def main():
                import threading
                def work():
                    raise ConnectionError("worker lost the database")
                t = threading.Thread(target=work)
                t.start()
                t.join()
                return 0
            raise SystemExit(main())
            """
        )
    )
    proc = run_cli([], otlp_sink.endpoint, script=script)
    assert proc.returncode == 0
    assert "ConnectionError: worker lost the database" in proc.stderr  # Python's own thread hook ran
    (span,) = otlp_sink.wait_for(_error_spans)
    stack = span["events"][0]["attributes"]["exception.stacktrace"]
    assert "in work" in stack and "ConnectionError" in stack
    assert span["attributes"]["process.exit.code"] == 0
