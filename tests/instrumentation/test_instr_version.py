"""The instrumentation's version has one source: instrumentation/pyproject.toml, read back from package metadata."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import autoheal_instrumentation
from _pyinstr_helpers import REPO, OtlpSink, base_env

PACKAGE = REPO / "instrumentation" / "src" / "autoheal_instrumentation"


def _pyproject_version() -> str:
    project = tomllib.loads((REPO / "instrumentation" / "pyproject.toml").read_text())["project"]
    return str(project["version"])


def test_version_is_the_installed_distributions() -> None:
    """__version__ is what the installed metadata says, and that is pyproject.toml's version."""
    assert autoheal_instrumentation.__version__ == version("otel-autoheal-instrumentation") == _pyproject_version()


def test_no_module_spells_out_the_version() -> None:
    """No source file of the package writes its own version (or its major.minor) as a string literal."""
    short = ".".join(_pyproject_version().split(".")[:2])
    literal = re.compile(rf"""["'/]{re.escape(short)}(\.\d+)*["']""")
    found = [f"{p.name}: {m.group(0)}" for p in sorted(PACKAGE.glob("*.py")) for m in literal.finditer(p.read_text())]
    assert found == []


def test_failing_run_reports_the_package_version(otlp_sink: OtlpSink, run_cli: Any) -> None:
    """A failing CLI run names the package version as its telemetry.sdk.version."""
    proc = run_cli(["sync", "--fail"], otlp_sink.endpoint)
    assert proc.returncode == 1
    (span,) = otlp_sink.wait_for(lambda s: [x for x in s.spans if x["status_code"] == 2])
    assert span["resource"]["telemetry.sdk.version"] == version("otel-autoheal-instrumentation")
    assert span["scope"] == "autoheal_instrumentation.cli"


def test_version_is_not_read_at_import(tmp_path: Path) -> None:
    """Importing the package and starting a run leave importlib.metadata unloaded (it costs ~30 ms at start)."""
    code = "import sys, autoheal_instrumentation as a; a.init_cli(); print('importlib.metadata' in sys.modules)"
    env = base_env(AUTOHEAL_SPOOL_DIR=str(tmp_path / "spool"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
