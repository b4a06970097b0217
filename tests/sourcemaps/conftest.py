"""Fixtures for the source-map tests: the test shop built by esbuild, a static site, Chromium."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from sourcemap_support import CHROMIUM, JS_DIR, Site  # noqa: E402


def _require(path: Path, what: str) -> None:
    if not path.exists():
        pytest.fail(f"{what} missing at {path}: run ./scripts/setup.sh")


@pytest.fixture(scope="session")
def shop_builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Projects ``a`` and ``b`` of the test shop, each built by esbuild into ``dist/`` (b has code above the bug)."""
    _require(HERE / "node_modules" / "esbuild", "esbuild (tests/sourcemaps/node_modules)")
    root = tmp_path_factory.mktemp("shop")
    builds = {}
    for variant in ("a", "b"):
        project = root / variant
        subprocess.run(["node", str(HERE / "app" / "build.mjs"), str(project), variant], check=True, cwd=HERE,
                       timeout=120)
        builds[variant] = project
    return builds


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    root = tmp_path / "site"
    root.mkdir()
    instance = Site(root)
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
def throw_in_chromium() -> Any:
    """Open a page in real Chromium, wait for its error and the SDK's flush; returns the driver's result."""
    _require(JS_DIR / "node_modules" / "playwright-core", "playwright-core (js-instrumentation/node_modules)")
    _require(JS_DIR / "dist" / "otel-autoheal.iife.min.js", "the JS SDK bundle (npm run build in js-instrumentation)")
    _require(Path(CHROMIUM), "Chromium (AUTOHEAL_CHROMIUM)")

    def run(url: str) -> dict[str, Any]:
        done = subprocess.run(["node", str(HERE / "throw.mjs"), str(JS_DIR), CHROMIUM, url], capture_output=True,
                              text=True, timeout=180, cwd=HERE)
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), "")
        assert line, f"driver printed no result: {done.stdout[-2000:]} {done.stderr[-2000:]}"
        result: dict[str, Any] = json.loads(line[len("RESULT "):])
        assert "error" not in result and result.get("flushed"), result
        return result

    return run
