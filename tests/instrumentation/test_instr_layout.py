"""The instrumentation package's shape: a flat sorted public API over small private modules."""

from __future__ import annotations

import ast

import autoheal_instrumentation
from _pyinstr_helpers import REPO

PACKAGE = REPO / "instrumentation" / "src" / "autoheal_instrumentation"
MAX_MODULE_LINES = 400
MAX_PAYLOAD_FUNCTION_LINES = 40
# Byte-identical with otel_autoheal/_scrub_engine.py (a test checks): split on the service side first.
SHARED_WITH_SERVICE = {"_scrub_engine.py"}


def test_public_api_is_flat_sorted_and_resolves() -> None:
    """__all__ is sorted, unchanged, and every name in it resolves on the package."""
    names = autoheal_instrumentation.__all__
    assert names == sorted(names)
    assert names == [
        "CliRun", "current_run", "init_cli", "instrument_cli", "instrument_mcp",
        "scrub_argv", "scrub_text", "scrub_value", "setup_otel", "shutdown",
    ]  # fmt: skip
    assert all(callable(getattr(autoheal_instrumentation, name)) for name in names)


def test_every_module_is_small() -> None:
    """No module of the package is over 400 lines (the scrub engine is the service's, shipped as is)."""
    sizes = {p.name: len(p.read_text().splitlines()) for p in PACKAGE.glob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES and name not in SHARED_WITH_SERVICE} == {}


def test_payload_functions_are_short() -> None:
    """Every function building the CLI payload is under 40 lines."""
    tree = ast.parse((PACKAGE / "_cli_payload.py").read_text())
    lengths = {
        node.name: node.end_lineno - node.lineno + 1
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.end_lineno is not None
    }
    assert lengths and {name: n for name, n in lengths.items() if n >= MAX_PAYLOAD_FUNCTION_LINES} == {}
