"""``otel-autoheal sourcemaps upload | inject | list | delete``."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

__all__ = ["add_sourcemaps_arguments", "run_sourcemaps"]


def add_sourcemaps_arguments(parser: argparse.ArgumentParser, add_common: Any) -> None:
    """The subcommands; ``add_common`` adds ``--config`` / ``--state`` / ``--database-url`` (the CLI's own helper)."""
    sub = parser.add_subparsers(dest="sourcemaps_command", required=True, metavar="{upload,inject,list,delete}")
    upload = sub.add_parser("upload", help="store a build's source maps (and minified bundles) for a release")
    add_common(upload)
    upload.add_argument("--release", required=True, help="the service.version the build is deployed as")
    upload.add_argument("--url-prefix", default="~/", help="URL the directory is served under; ~/ means any "
                        "origin (default ~/; e.g. https://cdn.example.com/static/ or ~/assets/)")
    upload.add_argument("directory", type=Path, help="the build's output directory (e.g. dist/)")
    inject = sub.add_parser("inject", help="give every bundle with a map a Debug ID and the snippet that reports it "
                            "(before upload and deploy)")
    inject.add_argument("directory", type=Path)
    listing = sub.add_parser("list", help="list uploaded source maps")
    add_common(listing)
    listing.add_argument("--release", help="only this release")
    listing.add_argument("--json", action="store_true")
    delete = sub.add_parser("delete", help="delete the source maps of a release")
    add_common(delete)
    delete.add_argument("--release", required=True)
    delete.add_argument("--url", help="only the bundle with this URL (as `list` shows it)")


def _store(args: argparse.Namespace, load: Any) -> Any:
    """The state store the configuration names: PostgreSQL with ``--database-url``, else SQLite in ``--state``."""
    from otel_autoheal.state import open_store

    return open_store(load(args, ("state_dir", "database_url")))


def run_sourcemaps(args: argparse.Namespace, load: Any, out: TextIO = sys.stdout) -> int:
    """Run the subcommand; ``load`` reads the configuration as the CLI does."""
    from otel_autoheal.sourcemaps import _store as maps
    from otel_autoheal.sourcemaps._artifacts import inject_debug_ids, scan_build

    command = args.sourcemaps_command
    if command == "inject":
        for path, debug_id in inject_debug_ids(args.directory):
            print(f"{debug_id}  {path}", file=out)
        return 0
    if command == "upload":
        artifacts = scan_build(args.directory, args.url_prefix)  # bad input fails before the store is touched
        store = _store(args, load)
        try:
            maps.save_artifacts(store, args.release, artifacts)
        finally:
            store.close()
        for item in artifacts:
            extra = f" debugId={item.debug_id}" if item.debug_id else ""
            map_only = "" if item.bundle is not None else " (map only: function names stay unresolved)"
            print(f"uploaded {item.url}{extra}{map_only}", file=out)
        print(f"{len(artifacts)} source map(s) stored for release {args.release}", file=out)
        return 0
    store = _store(args, load)
    try:
        if command == "list":
            rows = maps.list_maps(store, args.release)
            if args.json:
                print(json.dumps([_row(r) for r in rows], indent=2), file=out)
            elif not rows:
                print("no source maps uploaded", file=out)
            for row in rows if not args.json else []:
                print(f"{row.release:<16} {row.url}  {row.debug_id or '-'}  {row.map_bytes} bytes", file=out)
            return 0
        removed = maps.delete_release(store, args.release, args.url)
        print(f"deleted {removed} source map(s) of release {args.release}", file=out)
        return 0 if removed else 1
    finally:
        store.close()


def _row(row: Any) -> dict[str, Any]:
    return {"release": row.release, "url": row.url, "debug_id": row.debug_id, "compressed_bytes": row.map_bytes,
            "uploaded": datetime.fromtimestamp(row.uploaded, tz=UTC).isoformat(timespec="seconds")}
