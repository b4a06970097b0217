"""CLI instrumentation: one span per run, exported only when the run fails (errors-only mode).

At start this module only draws random ids, reads the clock and installs cheap hooks; the OTLP
protobuf code, urllib and threads are imported when there is something to send.
"""

from __future__ import annotations

import atexit
import os
import sys
import time

from . import _config
from ._logbuffer import LogBuffer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from ._config import Settings
    from ._otlp import LogData

__all__ = ["CliRun", "current_run", "init_cli", "instrument_cli"]

_VERSION = "0.1.0"
_SCOPE = ("autoheal_instrumentation.cli", _VERSION)
_SEVERITY = {10: (5, "DEBUG"), 20: (9, "INFO"), 30: (13, "WARN"), 40: (17, "ERROR"), 50: (21, "FATAL")}
_MAX_LOG_BODY = 8192

_active: CliRun | None = None


def _debug(msg: str, *args: object) -> None:
    # Only touches logging when it is loaded already; our failures stay at debug level.
    logging = sys.modules.get("logging")
    if logging is not None:
        try:
            logging.getLogger("autoheal_instrumentation").debug(msg, *args)
        except Exception:
            pass


def _ids() -> tuple[bytes, bytes]:
    raw = os.urandom(24)
    trace_id, span_id = raw[:16], raw[16:]
    if not any(trace_id):
        trace_id = b"\x00" * 15 + b"\x01"
    if not any(span_id):
        span_id = b"\x00" * 7 + b"\x01"
    return trace_id, span_id


def _exc_type_name(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    if module in ("builtins", "__builtin__", None):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def _exit_code_of(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    return 1


def _is_interactive() -> bool:
    return hasattr(sys, "ps1") or bool(sys.flags.interactive)


class CliRun:
    """The state of one instrumented CLI run (one per process)."""

    def __init__(self, settings: Settings, *, report_keyboard_interrupt: bool, ignore_exit_codes: Sequence[int]):
        self.settings = settings
        self.trace_id, self.span_id = _ids()
        self.start_ns = time.time_ns()
        self.argv = list(sys.argv)
        self.command: str | None = None
        self.command_resolver: Callable[[], str | None] | None = None
        self.exception: BaseException | None = None
        self.exception_ns = 0
        self.exit_code: int | None = None
        self.finished = False
        self.report_keyboard_interrupt = report_keyboard_interrupt
        self.ignore_exit_codes = frozenset(ignore_exit_codes)
        self.logs = LogBuffer(settings.log_level, settings.log_buffer)
        self._flush_thread: Any = None
        self._flush_started = 0.0

    # -- start ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.logs.install()
        _install_excepthook()
        atexit.register(self._atexit)
        self._start_spool_flush()

    def _start_spool_flush(self) -> None:
        from . import _spool

        if not _spool.pending(self.settings.spool_dir):
            return
        import threading

        self._flush_started = time.monotonic()
        deadline = self._flush_started + max(self.settings.export_timeout, 0.05)
        self._flush_thread = threading.Thread(
            target=_flush_spool, args=(self.settings, deadline), name="otel-autoheal-spool", daemon=True
        )
        self._flush_thread.start()

    # -- recording -----------------------------------------------------------------------------
    def record_exception(self, exc: BaseException) -> None:
        """Remember the run's failure; the first one wins."""
        if self.exception is not None or getattr(exc, "__autoheal_seen__", False):
            return
        try:
            exc.__autoheal_seen__ = True  # type: ignore[attr-defined]
        except Exception:
            pass
        if isinstance(exc, SystemExit):
            code = _exit_code_of(exc)
            self.exit_code = code
            if code == 0 or code in self.ignore_exit_codes:
                return
            # "except Error: log; sys.exit(1)": the handled exception is the real error.
            inner = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
            if inner is not None and not isinstance(inner, (SystemExit, KeyboardInterrupt)):
                exc = inner
        elif isinstance(exc, KeyboardInterrupt):
            self.exit_code = 130
            if not self.report_keyboard_interrupt:
                return
        else:
            self.exit_code = 1
        self.exception = exc
        self.exception_ns = time.time_ns()

    def record_thread_exception(self, exc: BaseException) -> None:
        """An unhandled exception in another thread: reported, but the exit code stays the process's own."""
        if self.exception is not None or isinstance(exc, (SystemExit, KeyboardInterrupt)):
            return
        if getattr(exc, "__autoheal_seen__", False):
            return
        try:
            exc.__autoheal_seen__ = True  # type: ignore[attr-defined]
        except Exception:
            pass
        self.exception = exc
        self.exception_ns = time.time_ns()

    def _atexit(self) -> None:
        self.finish(None)

    # -- finish --------------------------------------------------------------------------------
    def finish(self, exit_code: int | None) -> None:
        """End the run: export when it failed (or always in full mode), within the time bound."""
        global _active
        if self.finished:
            return
        self.finished = True
        if _active is self:
            _active = None
        try:
            if exit_code is not None and self.exit_code is None:
                self.exit_code = exit_code
            end_ns = time.time_ns()
            deadline = time.monotonic() + self.settings.export_timeout
            if self.exception is not None or self.settings.mode == _config.MODE_FULL:
                traces, logs = self._payload(end_ns)
                _deliver(self.settings, traces, logs, deadline, after=self._flush_thread)
            if self._flush_thread is not None:
                self._flush_thread.join(max(0.0, deadline - time.monotonic()))
        except Exception as exc:
            _debug("otel-autoheal: finishing the run failed: %r", exc)

    def _resolve_command(self) -> str | None:
        if self.command is None and self.command_resolver is not None:
            try:
                self.command = self.command_resolver()
            except Exception:
                self.command = None
        return self.command

    def _payload(self, end_ns: int) -> tuple[bytes, bytes]:
        import platform
        import traceback

        from ._otlp import build_logs, build_traces
        from ._scrub import scrub_argv, scrub_text, scrub_value

        settings = self.settings
        prog = os.path.basename(self.argv[0]) if self.argv and self.argv[0] else "python"
        command = self._resolve_command()
        runtime_version = platform.python_version()
        resource: dict[str, Any] = {
            "service.name": settings.service_name,
            "telemetry.sdk.name": "otel-autoheal-instrumentation",
            "telemetry.sdk.language": "python",
            "telemetry.sdk.version": _VERSION,
            "process.runtime.name": sys.implementation.name,
            "process.runtime.version": runtime_version,
            "process.pid": os.getpid(),
            "os.type": sys.platform,
        }
        if self.exception is not None:
            from ._source_context import source_context_attributes, vcs_attributes

            resource.update(vcs_attributes(self.exception, settings.resource_attributes))
        resource.update(settings.resource_attributes)
        if settings.service_version:
            resource["service.version"] = settings.service_version
        # OTEL_RESOURCE_ATTRIBUTES is text someone typed: scrubbed like the rest, since the payload
        # may be spooled to disk.
        resource = scrub_value(resource)
        args = scrub_argv(self.argv)
        attributes: dict[str, Any] = {
            "process.command": prog,
            "process.command_args": args,
            "process.runtime.version": runtime_version,
            "cli.command": command or "",
            "service.version": settings.service_version,
        }
        if self.exit_code is not None:
            attributes["process.exit.code"] = self.exit_code
        trace_id, span_id = self.trace_id, self.span_id
        logs: list[LogData] = []
        for ts, levelno, levelname, name, message, exc, pathname, lineno in self.logs.snapshot():
            number, text = _SEVERITY.get(levelno - levelno % 10, (9, levelname))
            log_attrs: dict[str, Any] = {"logger.name": name, "code.file.path": pathname, "code.line.number": lineno}
            if exc is not None:
                log_attrs.update(_exception_attributes(exc, traceback, scrub_text))
            logs.append(
                {
                    "time": ts,
                    "severity_number": number,
                    "severity_text": text,
                    "body": scrub_text(message[:_MAX_LOG_BODY]),
                    "attributes": log_attrs,
                    "trace_id": trace_id,
                    "span_id": span_id,
                    "event_name": "",
                }
            )
        events = []
        status_code, status_message = 0, ""
        if self.exception is not None:
            exc_attrs = _exception_attributes(self.exception, traceback, scrub_text)
            events.append(
                {
                    "name": "exception",
                    "time": self.exception_ns,
                    "attributes": {
                        **exc_attrs, "exception.escaped": "True",
                        **source_context_attributes(self.exception, scrub_text),
                    },
                }
            )
            status_code = 2
            status_message = f"{type(self.exception).__qualname__}: {exc_attrs['exception.message']}"[:1024]
            attributes["error.type"] = exc_attrs["exception.type"]
            logs.append(
                {
                    "time": self.exception_ns,
                    "severity_number": 21,
                    "severity_text": "FATAL",
                    "body": status_message,
                    "attributes": {**exc_attrs, "cli.command": command or ""},
                    "trace_id": trace_id,
                    "span_id": span_id,
                    "event_name": "exception",
                }
            )
        span = {
            "trace_id": trace_id,
            "span_id": span_id,
            "name": f"{prog} {command}" if command else prog,
            "start": self.start_ns,
            "end": end_ns,
            "attributes": attributes,
            "events": events,
            "status_code": status_code,
            "status_message": status_message,
        }
        traces_pb = build_traces(resource, _SCOPE, [span])  # type: ignore[list-item]
        logs_pb = build_logs(resource, _SCOPE, logs) if logs else None
        return traces_pb.SerializeToString(), logs_pb.SerializeToString() if logs_pb is not None else b""


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _without_own_frames(tb: Any) -> Any:
    """Skip the leading frames of our wrappers so the stack starts in the host's code."""
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        tb = tb.tb_next
    return tb


def _exception_attributes(exc: BaseException, traceback: Any, scrub_text: Callable[[str], str]) -> dict[str, str]:
    try:
        stack = "".join(traceback.format_exception(type(exc), exc, _without_own_frames(exc.__traceback__)))
    except Exception:
        stack = ""
    return {
        "exception.type": _exc_type_name(exc),
        "exception.message": scrub_text(str(exc)),
        "exception.stacktrace": scrub_text(stack),
    }


def _deliver(settings: Settings, traces: bytes, logs: bytes, deadline: float, after: Any = None) -> None:
    """Spool first, then send in a daemon thread; give up at the deadline and leave it spooled.

    ``after`` (the backlog flush thread) is waited for before sending: older errors reach the
    service before this one, so the issue body, which shows the last occurrence received, shows
    this run's context rather than a replayed one's.
    """
    import threading

    from . import _spool
    from ._export import send

    path = _spool.write(
        settings.spool_dir, traces, logs, settings.spool_max_files, settings.spool_max_bytes, claimed=True
    )
    if settings.export_timeout <= 0:
        if path is not None:
            _spool.release(path, sent=False)
        return
    done = threading.Event()
    outcome = [False]

    def work() -> None:
        if after is not None:
            after.join(max(0.0, deadline - time.monotonic()))
        ok = send(traces, logs, settings, deadline)
        outcome[0] = ok
        if path is not None and ok:
            _spool.release(path, sent=True)
        done.set()

    threading.Thread(target=work, name="otel-autoheal-export", daemon=True).start()
    done.wait(max(0.0, deadline - time.monotonic()))
    if not outcome[0] and path is not None:
        _spool.release(path, sent=False)


def _flush_spool(settings: Settings, deadline: float) -> None:
    try:
        from . import _spool
        from ._export import send

        for path in _spool.pending(settings.spool_dir)[:20]:
            if time.monotonic() >= deadline:
                return
            claimed = _spool.claim(path)
            if claimed is None:
                continue
            payload = _spool.read(claimed)
            if payload is None:
                _spool.release(claimed, sent=True)  # not ours or damaged: drop it
                continue
            ok = send(payload[0], payload[1], settings, deadline)
            _spool.release(claimed, sent=ok)
            if not ok:
                return  # endpoint unavailable: keep the rest for a later run
    except Exception as exc:
        _debug("otel-autoheal: spool flush failed: %r", exc)


# -- excepthook ----------------------------------------------------------------------------------
_hook_installed = False


def _excepthook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    try:
        run = _active
        if run is not None and exc is not None:
            run.record_exception(exc)
    except Exception:
        pass
    finally:
        previous = _previous_hook if _previous_hook is not None else sys.__excepthook__
        previous(exc_type, exc, tb)


_previous_hook: Callable[..., Any] | None = None
_previous_thread_hook: Callable[..., Any] | None = None


def _thread_excepthook(args: Any) -> None:
    """``threading.excepthook``: a worker thread died with an exception; the previous hook still runs."""
    try:
        run = _active
        if run is not None and args.exc_value is not None:
            run.record_thread_exception(args.exc_value)
    except Exception:
        pass
    finally:
        import threading

        previous = _previous_thread_hook if _previous_thread_hook is not None else threading.__excepthook__
        previous(args)


def _install_excepthook() -> None:
    global _hook_installed, _previous_hook, _previous_thread_hook
    if _hook_installed or _is_interactive():
        return
    _hook_installed = True
    _previous_hook = sys.excepthook
    sys.excepthook = _excepthook
    # Importing threading here would cost start-up time: hook it now if the app already has it,
    # else right after the app (or logging, which uses it) imports it.
    if "threading" in sys.modules:
        _install_thread_hook()
    else:
        from ._logbuffer import AfterImportHook

        sys.meta_path.insert(0, AfterImportHook("threading", _install_thread_hook))


def _install_thread_hook() -> None:
    global _previous_thread_hook
    import threading

    if threading.excepthook is not _thread_excepthook:
        _previous_thread_hook = threading.excepthook
        threading.excepthook = _thread_excepthook


# -- public API ----------------------------------------------------------------------------------
def current_run() -> CliRun | None:
    """The run being recorded in this process, if any."""
    return _active


def init_cli(
    *,
    service_name: str | None = None,
    service_version: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: dict[str, str] | None = None,
    mode: str | None = None,
    log_level: int | str | None = None,
    export_timeout: float | None = None,
    spool_dir: str | None = None,
    disabled: bool | None = None,
    report_keyboard_interrupt: bool = False,
    ignore_exit_codes: Sequence[int] = (2,),
) -> CliRun | None:
    """Start recording this process as one CLI run; unhandled exceptions are reported at exit.

    Returns the run (idempotent), or None when disabled (OTEL_SDK_DISABLED=true) or on an
    internal failure. Usage errors (exit code 2, as argparse and click use) are not reported.
    """
    global _active
    if _active is not None:
        return _active
    try:
        prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
        if prog.endswith(".py"):
            prog = prog[:-3]
        settings = _config.resolve(
            source="cli",
            default_service_name=prog or "python-cli",
            service_name=service_name,
            service_version=service_version,
            endpoint=endpoint,
            protocol=protocol,
            headers=headers,
            disabled=disabled,
            export_timeout=export_timeout,
            spool_dir=spool_dir,
            mode=mode,
            log_level=log_level,
        )
        if settings.disabled:
            return None
        run = CliRun(settings, report_keyboard_interrupt=report_keyboard_interrupt, ignore_exit_codes=ignore_exit_codes)
        _active = run
        run.start()
        return run
    except Exception as exc:
        _debug("otel-autoheal: init failed: %r", exc)
        return None


def _subcommand_from_argv(
    choices_of: Callable[[Any], dict[str, Any] | None], root: Any, argv: Sequence[str]
) -> str | None:
    """Walk argv down nested command groups; skips options and their values."""
    path: list[str] = []
    node = root
    tokens = list(argv)
    while True:
        choices = choices_of(node)
        if not choices:
            break
        for i, token in enumerate(tokens):
            if token in choices:
                path.append(token)
                node = choices[token]
                tokens = tokens[i + 1 :]
                break
        else:
            break
    return " ".join(path) or None


def _click_choices(node: Any) -> dict[str, Any] | None:
    commands = getattr(node, "commands", None)
    return commands if isinstance(commands, dict) else None


def _argparse_choices(parser: Any) -> dict[str, Any] | None:
    for action in getattr(parser, "_actions", ()):
        choices = getattr(action, "choices", None)
        if type(action).__name__ == "_SubParsersAction" and isinstance(choices, dict):
            return choices
    return None


def _wrap_callable(
    fn: Callable[..., Any], options: dict[str, Any], resolver_for: Callable[[CliRun], None] | None
) -> Callable[..., Any]:
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        outer = _active is None
        run = init_cli(**options) if outer else None
        if run is None:
            return fn(*args, **kwargs)
        if resolver_for is not None:
            resolver_for(run)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            try:
                run.record_exception(exc)
            except Exception as inner:
                _debug("otel-autoheal: recording failed: %r", inner)
            run.finish(run.exit_code)
            raise
        run.finish(result if isinstance(result, int) and not isinstance(result, bool) else 0)
        return result

    return wrapper


def instrument_cli(target: Any = None, /, **options: Any) -> Any:
    """Instrument a CLI entry point; returns it (or a decorator when called with options only).

    ``target`` may be a plain ``main`` function, a click command/group, a typer app or an
    argparse parser. Options are those of :func:`init_cli`.
    """
    if target is None:
        return lambda t: instrument_cli(t, **options)
    try:
        click = sys.modules.get("click")
        typer = sys.modules.get("typer")
        if typer is not None and isinstance(target, typer.Typer):
            return _instrument_typer(target, options)
        if click is not None and isinstance(target, click.Command):
            original_main = target.main

            def click_resolver(run: CliRun) -> None:
                argv = list(run.argv[1:])
                run.command_resolver = lambda: _subcommand_from_argv(_click_choices, target, argv)

            target.main = _wrap_callable(original_main, options, click_resolver)
            return target
        if type(target).__name__ == "ArgumentParser" or hasattr(target, "parse_known_args"):
            return _instrument_argparse(target, options)
        if callable(target):
            return _wrap_callable(target, options, None)
    except Exception as exc:
        _debug("otel-autoheal: cannot instrument %r: %r", target, exc)
    return target


def _instrument_typer(app: Any, options: dict[str, Any]) -> Any:
    base = type(app)

    def resolver(run: CliRun) -> None:
        argv = list(run.argv[1:])

        def resolve() -> str | None:
            import typer.main

            return _subcommand_from_argv(_click_choices, typer.main.get_command(app), argv)

        run.command_resolver = resolve

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return _wrap_callable(lambda *a, **k: base.__call__(self, *a, **k), options, resolver)(*args, **kwargs)

    # __call__ is looked up on the type, so a per-instance subclass is the only non-global way.
    app.__class__ = type(base.__name__, (base,), {"__call__": call})
    return app


def _instrument_argparse(parser: Any, options: dict[str, Any]) -> Any:
    """Start the run when arguments are parsed; the command comes from the parsed subparsers."""
    original = parser.parse_known_args

    def parse_known_args(args: Any = None, namespace: Any = None) -> Any:
        run = init_cli(**options)
        result = original(args, namespace)
        if run is not None:
            argv = list(sys.argv[1:] if args is None else args)
            run.command_resolver = lambda: _subcommand_from_argv(_argparse_choices, parser, argv)
        return result

    parser.parse_known_args = parse_known_args
    return parser
