"""The ``otel-autoheal`` command: ``serve``, ``issues``, ``show``, ``status``, ``repair``, ``config``, ``init``,
``sourcemaps``.

Every error a user can cause (a bad setting, a port in use, a damaged or unreadable database)
ends the command with exit code 2 and one line on stderr naming the setting, address or path and
what to do; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from otel_autoheal.config import Config, load_config, source_of, state_path
from otel_autoheal.errors import AutohealError, StateError
from otel_autoheal.model import GroupRecord

__all__ = ["main"]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")


#: File name of the state database inside the state directory.
STATE_FILE = "autoheal.sqlite3"


def group_json(group: GroupRecord) -> dict[str, Any]:
    """``first_seen``/``last_seen``: the errors' own times; ``*_processed``: when they were recorded."""
    return {
        "id": group.id,
        "fingerprint": group.fingerprint,
        "title": group.title,
        "count": group.count,
        "first_seen": _iso(group.first_seen),
        "last_seen": _iso(group.last_seen),
        "first_processed": _iso(group.first_processed),
        "last_processed": _iso(group.last_processed),
        "service": group.service,
        "exception_type": group.exception_type,
        "source": group.source,
        "versions": list(group.versions),
        "trace_ids": list(group.trace_ids),
        "body": group.body,
    }


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (env: AUTOHEAL_CONFIG)")
    parser.add_argument("--state", dest="state_dir", help="state directory (env: AUTOHEAL_STATE_DIR; "
                        "default: the user's data dir)")
    parser.add_argument("--database-url", dest="database_url", help="postgresql://… URL of a state database "
                        "shared by several instances (env: AUTOHEAL_DATABASE_URL; default: SQLite in --state)")


class _VersionAction(argparse.Action):
    """``--version``; the distribution's metadata is read only when asked (start-up stays fast)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> NoReturn:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("otel-autoheal")
        except PackageNotFoundError:
            number = "unknown (not installed)"
        print(f"otel-autoheal {number}")
        parser.exit()


class _Parser(argparse.ArgumentParser):
    """Errors come from the subcommand's own parser, with a "did you mean" for typos."""

    commands: dict[str, argparse.ArgumentParser]

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        if argv and not argv[0].startswith("-") and argv[0] not in self.commands:
            close = difflib.get_close_matches(argv[0], list(self.commands), n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            self.error(f"unknown command {argv[0]!r}; {hint}(commands: {', '.join(self.commands)})")
        parsed, extras = self.parse_known_args(argv, namespace)
        if extras:
            command = self.commands.get(getattr(parsed, "command", None) or "", self)
            unknown = next((e for e in extras if e.startswith("-")), extras[0])
            options = [o for o in command._option_string_actions if o.startswith("--")]
            close = difflib.get_close_matches(unknown.split("=", 1)[0], options, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            command.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return parsed


def _parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="otel-autoheal",
        description="Turn errors in OpenTelemetry traces and logs into grouped, scrubbed issues.",
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="receive OTLP and file issues")
    _add_common(serve)
    serve.add_argument("--otlp-grpc", dest="otlp_grpc", metavar="HOST:PORT", help="default 127.0.0.1:4317")
    serve.add_argument("--otlp-http", dest="otlp_http", metavar="HOST:PORT", help="default 127.0.0.1:4318")
    serve.add_argument("--trace-wait", dest="trace_wait", type=float, metavar="SECONDS",
                       help="silence after which a trace is processed (default 3)")
    serve.add_argument("--cors-origin", dest="cors_origins", action="append", metavar="ORIGIN",
                       help="browser origin allowed to send OTLP/JSON (repeatable; env AUTOHEAL_CORS_ORIGINS)")
    serve.add_argument("--log-level", dest="log_level", help="DEBUG, INFO (default), WARNING, ERROR")
    serve.add_argument("--ui", dest="ui_flag", metavar="HOST:PORT|off",
                       help="serve the web page on its own address, or 'off' (default: on the OTLP/HTTP address; "
                            "env AUTOHEAL_UI_ADDRESS, AUTOHEAL_UI)")

    issues = sub.add_parser("issues", help="list the issues (groups) in the local store")
    _add_common(issues)
    issues.add_argument("--json", action="store_true", help="print a JSON array with the rendered bodies")

    show = sub.add_parser("show", help="print one rendered issue")
    _add_common(show)
    show.add_argument("id", type=int, help="issue id from `otel-autoheal issues`")

    status = sub.add_parser("status", help="show the sink, its backlog, budgets and last error")
    _add_common(status)
    status.add_argument("--json", action="store_true")

    repair = sub.add_parser("repair", help="move a damaged state database aside and salvage its readable rows")
    _add_common(repair)
    settings = sub.add_parser("config", help="show every setting, its value and where it came from (tokens masked)")
    _add_common(settings)
    settings.add_argument("--json", action="store_true")
    _add_onboarding(sub, with_arguments=bool(argv) and argv[0] == "init")
    _add_sourcemaps(sub, with_arguments=bool(argv) and argv[0] == "sourcemaps")
    parser.commands = dict(sub.choices)
    return parser


def _add_onboarding(sub: Any, with_arguments: bool) -> None:
    """``init``; its options (and the onboarding package, a third of the start-up time) only when used."""
    init = sub.add_parser("init", help="prepare a GitHub repository: workflow, Copilot instructions, labels")
    if with_arguments:
        from otel_autoheal.onboarding import add_init_arguments

        add_init_arguments(init)


#: The flag of each setting whose flag is not ``--<key with dashes>``.
_FLAGS = {"state_dir": "--state", "cors_origins": "--cors-origin"}


def _add_sourcemaps(sub: Any, with_arguments: bool) -> None:
    """``sourcemaps upload|inject|list|delete``; its options only when used."""
    maps = sub.add_parser("sourcemaps", help="upload, list or delete JavaScript source maps of a release")
    if with_arguments:
        from otel_autoheal.sourcemaps._command import add_sourcemaps_arguments

        add_sourcemaps_arguments(maps, _add_common)


def _load(args: argparse.Namespace, keys: Sequence[str]) -> Config:
    overrides = {k: getattr(args, k, None) for k in keys}
    origins = overrides.get("cors_origins")
    if origins:
        overrides["cors_origins"] = tuple(origins)
    flags = {k: _FLAGS.get(k, "--" + k.replace("_", "-")) for k in keys}
    return load_config(getattr(args, "config", None), overrides=overrides, flags=flags)


@contextmanager
def _created_paths_removed_on_failure(state_dir: Path) -> Iterator[None]:
    """Remove the directories and database files a failed start created (and nothing else)."""
    missing = []
    parent = state_dir.absolute()
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    db = state_dir / STATE_FILE
    db_existed = db.exists()
    try:
        yield
    except BaseException:
        if not db_existed:
            for suffix in ("", "-wal", "-shm", "-journal"):
                try:
                    Path(f"{db}{suffix}").unlink()
                except OSError:
                    pass  # never made (or the path is not even a directory)
        for directory in missing:  # innermost first; a directory somebody else filled stays
            try:
                directory.rmdir()
            except OSError:
                break
        raise


@contextmanager
def _state_errors(path: Path | str) -> Iterator[None]:
    """An SQLite error while reading becomes one StateError line naming the database."""
    import sqlite3

    from otel_autoheal.state.sqlite import damaged_message, is_damaged

    try:
        yield
    except sqlite3.Error as exc:
        if is_damaged(exc):
            raise StateError(damaged_message(Path(path), str(exc))) from None
        raise StateError(f"cannot use state database {path}: {exc}") from None


def _serve(args: argparse.Namespace) -> int:
    if args.ui_flag is not None:
        args.ui, args.ui_address = (False, None) if args.ui_flag.lower() in ("off", "false", "no") else (None, args.ui_flag)
    config = _load(args, ("state_dir", "database_url", "otlp_grpc", "otlp_http", "trace_wait", "cors_origins",
                          "log_level", "ui", "ui_address"))
    logging.basicConfig(level=config.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from otel_autoheal.service import Service

    state_dir = state_path(config)
    with _created_paths_removed_on_failure(state_dir), _state_errors(state_dir / STATE_FILE):
        service = Service(config)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service.start()
    print(f"otel-autoheal ready: grpc=127.0.0.1:{service.grpc_port} http=127.0.0.1:{service.http_port} "
          f"state={service.store.path} sink={service.sink.name} ui={service.ui_url or 'off'}", flush=True)
    stop.wait()
    service.stop()
    if service.store.lost is not None:
        # Exit without the interpreter's clean-up, which would close the database connection and
        # so checkpoint our WAL into a file that is no longer ours (see SQLiteStore.close).
        print(f"otel-autoheal: {service.store.lost}", file=sys.stderr, flush=True)
        logging.shutdown()
        os._exit(2)
    return 0


def _store(args: argparse.Namespace) -> Any:
    from otel_autoheal.state.sqlite import SQLiteStore

    config = _load(args, ("state_dir", "database_url"))
    if config.database_url:
        from otel_autoheal.state.postgres import PostgresStore

        store = PostgresStore(config.database_url)
        return store, store.path
    path = state_path(config) / STATE_FILE
    if not path.exists():
        return None, path
    return SQLiteStore(path, verify=True), path


def _github_numbers(store: Any) -> dict[str, int]:
    """fingerprint → GitHub issue number, when the GitHub sink has filed issues from this state."""
    if store is None:
        return {}
    from otel_autoheal.sinks.github.ledger import existing_ledger

    ledger = existing_ledger(store)
    return ledger.issue_numbers() if ledger is not None else {}


def _issues(args: argparse.Namespace) -> int:
    store, path = _store(args)
    with _state_errors(path):
        groups = store.groups() if store else []
        numbers = _github_numbers(store)
    if args.json:
        print(json.dumps([{**group_json(g), "github_issue": numbers.get(g.fingerprint)} for g in groups], indent=2))
        return 0
    if not groups:
        print(f"no issues yet (state: {path})")
        return 0
    print(f"{'ID':>4}  {'COUNT':>6}  {'LAST SEEN':<20}  {'SERVICE':<20}  {'GITHUB':<7}  TITLE")
    for g in groups:
        number = f"#{numbers[g.fingerprint]}" if g.fingerprint in numbers else "-"
        print(f"{g.id:>4}  {g.count:>6}  {_iso(g.last_seen)[:19]:<20}  {g.service[:20]:<20}  {number:<7}  "
              f"{g.title[:100]}")
    return 0


def _show(args: argparse.Namespace) -> int:
    store, path = _store(args)
    with _state_errors(path):
        group = store.group(args.id) if store else None
    if group is None:
        print(f"otel-autoheal: no issue with id {args.id} in {path}", file=sys.stderr)
        return 1
    print(f"# {group.title}\n")
    print(group.body)
    return 0


def _status(args: argparse.Namespace) -> int:
    config = _load(args, ("state_dir", "database_url"))
    from otel_autoheal.sinks import github_available

    store, path = _store(args)  # checked first: the GitHub status reads the same file
    info: dict[str, Any] = {"sink": "local", "state": str(path)}
    with _state_errors(path):
        if github_available(config):
            from otel_autoheal.sinks.github import offline_status

            info.update(offline_status(config))
        info["groups"] = store.group_count() if store else 0
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        for key, value in info.items():
            print(f"{key:>16}: {json.dumps(value, default=str) if isinstance(value, (dict, list)) else value}")
    return 0


def _repair(args: argparse.Namespace) -> int:
    from otel_autoheal.state.repair import repair_database

    config = _load(args, ("state_dir",))
    report = repair_database(state_path(config) / STATE_FILE)
    print(f"moved the damaged database aside to {report.backup}")
    for table, rows in report.saved.items():
        print(f"  {table}: {rows} rows saved")
    if report.lost_tables:
        print(f"  unreadable, nothing saved: {', '.join(report.lost_tables)}")
    print(f"repaired database: {report.path}")
    return 0


def _config(args: argparse.Namespace) -> int:
    from otel_autoheal.config import shown_settings
    from otel_autoheal.sinks import github_available

    config = _load(args, ("state_dir",))
    rows = {key: {"value": value, "source": str(source)} for key, (value, source) in shown_settings(config).items()}
    if github_available(config):
        from otel_autoheal.sinks.github.config import GitHubConfig

        try:
            github = GitHubConfig.for_service(config)
        except AutohealError as exc:
            rows["github"]["error"] = str(exc)
        else:
            for key, value in github.describe().items():
                if key != "token_source":
                    rows[f"github.{key}"] = {"value": value, "source": str(source_of(github, key))}
            rows["github.token"] = {"value": "***", "source": str(source_of(github, "token"))}
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    width = max(len(key) for key in rows)
    for key, row in rows.items():
        print(f"{key:<{width}}  {json.dumps(row['value'], default=str)}  [{row['source']}]")
        if "error" in row:
            print(f"{'':<{width}}  error: {row['error']}")
    return 0


def _sourcemaps(args: argparse.Namespace) -> int:
    from otel_autoheal.sourcemaps._command import run_sourcemaps

    return run_sourcemaps(args, _load)


def _init(args: argparse.Namespace) -> int:
    from otel_autoheal.onboarding import run_init

    return int(run_init(args, sys.stdin, sys.stdout))


def _os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc} (check the path and its permissions, or choose another --state / " \
           "AUTOHEAL_STATE_DIR)"


def main(argv: Sequence[str] | None = None) -> int:
    from otel_autoheal._envcheck import unknown_env_warnings

    for warning in unknown_env_warnings(os.environ):
        print(f"otel-autoheal: {warning}", file=sys.stderr)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser(argv).parse_args(argv)
    commands = {"serve": _serve, "issues": _issues, "show": _show, "status": _status, "repair": _repair,
                "config": _config, "init": _init, "sourcemaps": _sourcemaps}
    try:
        return commands[args.command](args)  # the parser accepts no other command
    except AutohealError as exc:
        print(f"otel-autoheal: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"otel-autoheal: {_os_error(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
