"""A small argparse CLI instrumented with otel-autoheal.

    python examples/cli/app.py sync --source https://user:pw@example.com/repo --fail
    python examples/cli/app.py status

Send to a local otel-autoheal (or collector) with OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318.
"""

from __future__ import annotations

import argparse
import logging

from autoheal_instrumentation import instrument_cli

log = logging.getLogger("exampleapp.sync")


def _parse_manifest(text: str) -> dict[str, int]:
    entries = {}
    for line in text.splitlines():
        name, _, count = line.partition("=")
        entries[name] = int(count)  # raises ValueError on a malformed line
    return entries


def sync(source: str, fail: bool) -> int:
    log.info("starting sync from %s", source)
    log.info("fetched %d manifest entries", 3)
    log.warning("entry %r has no checksum, continuing", "beta")
    manifest = "alpha=1\nbeta=2\ngamma=three" if fail else "alpha=1\nbeta=2"
    entries = _parse_manifest(manifest)
    log.info("synced %d entries", len(entries))
    return 0


@instrument_cli(service_name="exampleapp", service_version="0.1.0")
def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Instrumenting the parser too names the span after the sub-command ("app.py sync").
    parser = instrument_cli(argparse.ArgumentParser(prog="exampleapp"))
    sub = parser.add_subparsers(dest="command", required=True)
    p_sync = sub.add_parser("sync", help="synchronise the manifest")
    p_sync.add_argument("--source", default="https://example.com/manifest")
    p_sync.add_argument("--token", help="access token (scrubbed from telemetry)")
    p_sync.add_argument("--fail", action="store_true", help="fail on a malformed manifest line")
    p_sync.add_argument("--exit-code", type=int, default=None, help="exit with this code instead")
    sub.add_parser("status", help="print status")
    args = parser.parse_args(argv)
    if args.command == "status":
        print("ok")
        return 0
    if args.exit_code is not None:
        log.error("giving up with exit code %d", args.exit_code)
        raise SystemExit(args.exit_code)
    return sync(args.source, args.fail)


if __name__ == "__main__":
    raise SystemExit(main())
