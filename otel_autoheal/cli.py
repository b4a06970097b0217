"""The ``otel-autoheal`` command: ``serve``, ``issues``, ``show``, ``status``."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from otel_autoheal.config import Config, load_config, state_path
from otel_autoheal.errors import AutohealError
from otel_autoheal.model import GroupRecord

__all__ = ["main"]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds")


def group_json(group: GroupRecord) -> dict[str, Any]:
    return {
        "id": group.id,
        "fingerprint": group.fingerprint,
        "title": group.title,
        "count": group.count,
        "first_seen": _iso(group.first_seen),
        "last_seen": _iso(group.last_seen),
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-autoheal",
        description="Turn errors in OpenTelemetry traces and logs into grouped, scrubbed issues.",
    )
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

    issues = sub.add_parser("issues", help="list the issues (groups) in the local store")
    _add_common(issues)
    issues.add_argument("--json", action="store_true", help="print a JSON array with the rendered bodies")

    show = sub.add_parser("show", help="print one rendered issue")
    _add_common(show)
    show.add_argument("id", type=int, help="issue id from `otel-autoheal issues`")

    status = sub.add_parser("status", help="show the sink, its backlog, budgets and last error")
    _add_common(status)
    status.add_argument("--json", action="store_true")
    _add_onboarding(sub)
    return parser


def _add_onboarding(sub: Any) -> None:
    try:
        from otel_autoheal.onboarding import add_init_arguments
    except ImportError:
        return
    init = sub.add_parser("init", help="prepare a GitHub repository: workflow, Copilot instructions, labels")
    add_init_arguments(init)


def _load(args: argparse.Namespace, keys: Sequence[str]) -> Config:
    overrides = {k: getattr(args, k, None) for k in keys}
    origins = overrides.get("cors_origins")
    if origins:
        overrides["cors_origins"] = tuple(origins)
    return load_config(getattr(args, "config", None), overrides=overrides)


def _serve(args: argparse.Namespace) -> int:
    config = _load(args, ("state_dir", "otlp_grpc", "otlp_http", "trace_wait", "cors_origins", "log_level"))
    logging.basicConfig(level=config.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from otel_autoheal.service import Service

    service = Service(config)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service.start()
    print(f"otel-autoheal ready: grpc=127.0.0.1:{service.grpc_port} http=127.0.0.1:{service.http_port} "
          f"state={service.store.path} sink={service.sink.name}", flush=True)
    stop.wait()
    service.stop()
    return 0


def _store(args: argparse.Namespace) -> Any:
    from otel_autoheal.state.sqlite import SQLiteStore

    config = _load(args, ("state_dir",))
    path = state_path(config) / "autoheal.sqlite3"
    if not path.exists():
        return None, path
    return SQLiteStore(path), path


def _github_numbers(store: Any) -> dict[str, int]:
    """fingerprint → GitHub issue number, when the GitHub sink has filed issues from this state."""
    if store is None:
        return {}
    with store.transaction() as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='github_issues'").fetchone():
            return {}
        rows = conn.execute("SELECT fingerprint, issue_number FROM github_issues WHERE issue_number IS NOT NULL")
        return {str(r[0]): int(r[1]) for r in rows}


def _issues(args: argparse.Namespace) -> int:
    store, path = _store(args)
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
    group = store.group(args.id) if store else None
    if group is None:
        print(f"otel-autoheal: no issue with id {args.id} in {path}", file=sys.stderr)
        return 1
    print(f"# {group.title}\n")
    print(group.body)
    return 0


def _status(args: argparse.Namespace) -> int:
    config = _load(args, ("state_dir",))
    from otel_autoheal.sinks import github_available

    info: dict[str, Any] = {"sink": "local", "state": str(Path(state_path(config)) / "autoheal.sqlite3")}
    if github_available(config):
        from otel_autoheal.sinks.github import offline_status

        info.update(offline_status(config))
    store, _ = _store(args)
    info["groups"] = len(store.groups()) if store else 0
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        for key, value in info.items():
            print(f"{key:>16}: {json.dumps(value, default=str) if isinstance(value, (dict, list)) else value}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "issues":
            return _issues(args)
        if args.command == "show":
            return _show(args)
        if args.command == "status":
            return _status(args)
        if args.command == "init":
            from otel_autoheal.onboarding import run_init

            return int(run_init(args, sys.stdin, sys.stdout))
    except AutohealError as exc:
        print(f"otel-autoheal: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"otel-autoheal: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
