"""The resolver and the ``sourcemaps`` commands on real esbuild output, without a browser."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_autoheal.group.fingerprint import compute_fingerprint
from otel_autoheal.group.stacktrace import parse_stacktrace
from otel_autoheal.model import ExceptionRecord
from otel_autoheal.scrub import Scrubber
from otel_autoheal.sourcemaps import DEBUG_IDS_ATTRIBUTE, Symbolicator, save_artifacts, scan_build
from otel_autoheal.state.postgres import PostgresStore
from otel_autoheal.state.sqlite import SQLiteStore
from sourcemap_support import REPO, cli, fresh_build
from tests.otlp_payloads import new_span_id, new_trace_id, post, span, traces_payload
from tests.postgres_server import PostgresServer

Store = SQLiteStore | PostgresStore

SECRET = "ghp_4kQb8ZyTnWm2Lp9XcVr7Hs3Jd6Fg1Ae5Ku0O"


def _v8_stack(bundle: Path, url: str) -> str:
    """The stack V8 prints for the shop's bug, positions computed from the minified code."""
    code = bundle.read_text()
    throw_at = code.index("price.amount") + len("price.") + 1
    call_at = code.index("+=", code.index("for(let")) + 3
    return (f"TypeError: Cannot read properties of undefined (reading 'amount')\n"
            f"    at r ({url}:1:{throw_at})\n    at o ({url}:1:{call_at})\n")


def _record(stack: str, release: str, attributes: dict[str, object] | None = None) -> ExceptionRecord:
    record = ExceptionRecord("TypeError", "x", stack, 0, "t", "s", "log", resource={"service.version": release},
                             span_attributes=dict(attributes or {}))
    record.chain = parse_stacktrace(stack, record.type, record.message)
    return record



@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """The state options of one backend for the commands: ``--state DIR`` or ``--database-url`` of a fresh database."""
    if request.param == "sqlite":
        return ["--state", str(tmp_path / "state")]
    return ["--database-url", request.getfixturevalue("pg_server").new_database()]


def _open(backend: list[str]) -> Store:
    option, target = backend
    return SQLiteStore(Path(target) / "autoheal.sqlite3") if option == "--state" else PostgresStore(target)


@pytest.fixture
def store(backend: list[str]) -> Iterator[Store]:
    instance = _open(backend)
    yield instance
    instance.close()


def test_node_bundle_path_matches_an_upload_made_with_the_default_prefix(
    store: Store, shop_builds: dict[str, Path], tmp_path: Path
) -> None:
    """A frame at /srv/shop/dist/assets/app.min.js resolves through ``~/assets/app.min.js`` of its release only."""
    project = fresh_build(shop_builds, "a", tmp_path)
    save_artifacts(store, "1.0.0", scan_build(project / "dist"))
    stack = _v8_stack(project / "dist" / "assets" / "app.min.js", "/srv/shop/dist/assets/app.min.js")
    resolver = Symbolicator(store)

    frames = resolver.resolve(_record(stack, "1.0.0"))[0].frames
    assert [(f.filename, f.function, f.lineno) for f in frames] == [("src/cart.js", "cartTotal", 9),
                                                                    ("src/cart.js", "lineTotal", 3)]
    assert frames[1].context_line == "  return item.price.amount * item.quantity;"
    assert frames[1].pre_context == ("// Cart arithmetic of the test shop.", "export function lineTotal(item) {")
    other = resolver.resolve(_record(stack, "0.9.0"))[0].frames
    assert other[1].filename.endswith("app.min.js")
    # A Node path is no browser URL, and release 0.9.0 has no maps: nothing needed a map, nothing to say.
    assert other[1].symbolication is None


def test_fingerprint_is_the_same_for_both_builds(store: Store, shop_builds: dict[str, Path], tmp_path: Path) -> None:
    """Builds whose minified names and columns differ give one fingerprint once resolved, two before."""
    resolver = Symbolicator(store)
    keys, raw_keys = set(), set()
    for variant, release in (("a", "1.0.0"), ("b", "1.1.0")):
        project = fresh_build(shop_builds, variant, tmp_path)
        save_artifacts(store, release, scan_build(project / "dist", "https://shop.example/"))
        bundle = project / "dist" / "assets" / "app.min.js"
        minified = re.search(r"function (\w+)\(\w+\)\{return \w+\.price", bundle.read_text())
        assert minified
        stack = _v8_stack(bundle, "https://shop.example/assets/app.min.js").replace(" r (", f" {minified.group(1)} (")
        record = _record(stack, release)
        raw_keys.add(compute_fingerprint("shop", record.chain).hex)
        keys.add(compute_fingerprint("shop", resolver.resolve(record)).hex)
    assert len(keys) == 1 and len(raw_keys) == 2


def test_source_lines_are_scrubbed(store: Store, shop_builds: dict[str, Path], tmp_path: Path) -> None:
    """A token written in the original source never reaches a frame's source lines."""
    project = fresh_build(shop_builds, "a", tmp_path)
    map_path = project / "dist" / "assets" / "app.min.js.map"
    parsed = json.loads(map_path.read_text())
    parsed["sourcesContent"][0] = parsed["sourcesContent"][0].replace(
        "// Cart arithmetic of the test shop.", f"// deploy token {SECRET}")
    map_path.write_text(json.dumps(parsed))
    save_artifacts(store, "1.0.0", scan_build(project / "dist"))
    resolver = Symbolicator(store, scrub=Scrubber().text)
    stack = _v8_stack(project / "dist" / "assets" / "app.min.js", "https://shop.example/assets/app.min.js")

    frame = resolver.resolve(_record(stack, "1.0.0"))[0].frames[-1]
    assert frame.function == "lineTotal" and frame.pre_context
    assert all(SECRET not in line for line in (*frame.pre_context, frame.context_line or "", *frame.post_context))
    assert "redacted" in frame.pre_context[0]


def test_debug_id_finds_the_map_whatever_the_release(store: Store, shop_builds: dict[str, Path], tmp_path: Path) -> None:
    """An injected Debug ID keeps every mapped position, is in the map, and finds it under any release name."""
    project = fresh_build(shop_builds, "b", tmp_path)
    bundle = project / "dist" / "assets" / "app.min.js"
    before = bundle.read_text()
    out = cli("sourcemaps", "inject", str(project / "dist")).stdout
    debug_id = out.split()[0]
    after = bundle.read_text()
    assert after.startswith(before.split("\n//# sourceMappingURL=")[0] + "\n")  # the mapped line is untouched
    assert f"//# debugId={debug_id}" in after and after.rstrip().endswith("//# sourceMappingURL=app.min.js.map")
    assert json.loads((project / "dist" / "assets" / "app.min.js.map").read_text())["debugId"] == debug_id
    assert cli("sourcemaps", "inject", str(project / "dist")).stdout == ""  # already injected: unchanged
    save_artifacts(store, "ci-build-7", scan_build(project / "dist"))
    url = "https://shop.example/assets/app.min.js"
    stack = _v8_stack(bundle, url)

    frame = Symbolicator(store).resolve(_record(stack, "1.1.0", {DEBUG_IDS_ATTRIBUTE: [f"{debug_id} {url}"]}))[0].frames[-1]
    assert (frame.filename, frame.function, frame.lineno) == ("src/cart.js", "lineTotal", 8)
    unknown = "0b1e5b3c-0000-4000-8000-000000000000"
    missing = Symbolicator(store).resolve(_record(stack, "", {DEBUG_IDS_ATTRIBUTE: [f"{unknown} {url}"]}))[0].frames[-1]
    assert missing.symbolication == (f"no source map for file {url} (no release: service.version is not set), "
                                     f"nor for its Debug ID {unknown}")


def test_upload_list_delete_and_bad_input(backend: list[str], shop_builds: dict[str, Path], tmp_path: Path) -> None:
    """The commands store, list and delete per release; a directory without maps or a broken map is refused by name."""
    state = backend
    project = fresh_build(shop_builds, "a", tmp_path)
    # A map without sourcesContent gets it from the sources next to it.
    map_path = project / "dist" / "assets" / "app.min.js.map"
    parsed = json.loads(map_path.read_text())
    del parsed["sourcesContent"]
    map_path.write_text(json.dumps(parsed))
    assert "1 source map(s) stored for release 1.0.0" in cli("sourcemaps", "upload", *state, "--release", "1.0.0",
                                                              "--url-prefix", "https://cdn.example/static",
                                                              str(project / "dist")).stdout
    listed = json.loads(cli("sourcemaps", "list", *state, "--json").stdout)
    assert [(r["release"], r["url"]) for r in listed] == [("1.0.0", "https://cdn.example/static/assets/app.min.js")]
    store = _open(backend)
    try:
        url = "https://cdn.example/static/assets/app.min.js"
        stack = _v8_stack(project / "dist" / "assets" / "app.min.js", url)
        frame = Symbolicator(store).resolve(_record(stack, "1.0.0"))[0].frames[-1]
    finally:
        store.close()
    assert frame.context_line == "  return item.price.amount * item.quantity;"
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = cli("sourcemaps", "upload", *state, "--release", "2.0.0", str(empty), check=False)
    assert refused.returncode == 2 and f"no source maps in {empty}" in refused.stderr
    map_path.write_text("{not json")
    broken = cli("sourcemaps", "upload", *state, "--release", "2.0.0", str(project / "dist"), check=False)
    assert broken.returncode == 2 and f"{map_path} is not a JSON source map" in broken.stderr
    assert len(json.loads(cli("sourcemaps", "list", *state, "--json").stdout)) == 1  # nothing stored by the failures
    assert "deleted 1 source map(s) of release 1.0.0" in cli("sourcemaps", "delete", *state, "--release", "1.0.0").stdout
    assert cli("sourcemaps", "list", *state).stdout.strip() == "no source maps uploaded"


def test_an_instance_on_postgres_resolves_maps_uploaded_from_another_machine(
    autoheal_factory: Callable[..., Any], pg_server: PostgresServer, shop_builds: dict[str, Path], tmp_path: Path
) -> None:
    """Maps uploaded with ``--database-url`` by another process resolve the frames a serving PostgreSQL instance records."""
    database_url = pg_server.new_database()
    service = autoheal_factory(env={"AUTOHEAL_DATABASE_URL": database_url})
    project = fresh_build(shop_builds, "a", tmp_path)
    # The upload runs after the instance started: its resolver must find rows it did not write.
    uploaded = cli("sourcemaps", "upload", "--database-url", database_url, "--release", "1.0.0", "--url-prefix",
                   "https://shop.example/", str(project / "dist")).stdout
    assert "1 source map(s) stored for release 1.0.0" in uploaded
    stack = _v8_stack(project / "dist" / "assets" / "app.min.js", "https://shop.example/assets/app.min.js")
    trace_id, span_id = new_trace_id(), new_span_id()
    failed = span(trace_id, span_id, "checkout", error=True, kind=2,
                  exception={"type": "TypeError", "message": "Cannot read properties of undefined (reading 'amount')",
                             "stacktrace": stack})
    status, _ = post(f"{service.http_endpoint}/v1/traces",
                     traces_payload([failed], {"service.name": "shop", "service.version": "1.0.0"}))
    assert status == 200

    body = service.wait_for_issues(1)[0]["body"]
    assert "`lineTotal` in `src/cart.js:3`" in body, body
    assert "return item.price.amount * item.quantity;" in body and "Source maps:" not in body


def test_a_missing_sourcemaps_dir_stops_the_service_naming_the_setting(tmp_path: Path) -> None:
    """``sourcemaps_dir`` pointing nowhere ends ``serve`` with exit 2 and one line naming the key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOHEAL_", "OTEL_", "GITHUB_"))}
    env["AUTOHEAL_SOURCEMAPS_DIR"] = str(tmp_path / "nowhere")
    done = subprocess.run([sys.executable, "-m", "otel_autoheal", "serve", "--state", str(tmp_path / "state"),
                           "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0"], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"sourcemaps_dir: {tmp_path / 'nowhere'} is not a directory" in done.stderr


def test_inject_registers_a_debug_id_the_bundler_already_wrote(shop_builds: dict[str, Path], tmp_path: Path) -> None:
    """A bundle with Rollup-style ``//# debugId=`` but no run-time registration gets only the snippet, with its own ID."""
    project = fresh_build(shop_builds, "a", tmp_path)
    bundle = project / "dist" / "assets" / "app.min.js"
    debug_id = "5b2e0a4c-7f1d-4e3a-9c8b-1a2b3c4d5e6f"
    bundle.write_text(bundle.read_text() + f"//# debugId={debug_id}\n")
    map_before = (project / "dist" / "assets" / "app.min.js.map").read_text()

    assert cli("sourcemaps", "inject", str(project / "dist")).stdout.split() == [debug_id, str(bundle)]
    code = bundle.read_text()
    assert code.count("//# debugId=") == 1 and f'_autohealDebugIds||{{}})[s]="{debug_id}"' in code
    assert (project / "dist" / "assets" / "app.min.js.map").read_text() == map_before
