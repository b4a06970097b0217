"""Realistic stacks of every supported SDK (tests/testdata/stacks/<lang>/*.txt) against their sidecar expectations.

Each ``X.txt`` is a stack as an official SDK records it in ``exception.stacktrace``; ``X.expected.json``
gives the telemetry attributes that came with it (``input``), the parsed chain, the in-app and
instrumentation frames, the culprit, the fingerprint inputs and a ``group`` name: stacks with the
same group name must share one fingerprint (the same bug in another release, build or agent
version), stacks with different names must not.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from otel_autoheal.group.culprit import culprit_frame, frame_label
from otel_autoheal.group.fingerprint import compute_fingerprint
from otel_autoheal.group.stacktrace import parse_stacktrace

STACKS = Path(__file__).resolve().parent.parent / "testdata" / "stacks"
CASES = sorted(STACKS.glob("*/*.txt"))


def _observed(path: Path) -> tuple[dict[str, object], str]:
    expected = json.loads(path.with_suffix(".expected.json").read_text())
    inp = expected["input"]
    chain = parse_stacktrace(path.read_text(), inp.get("type", ""), inp.get("message", ""))
    fingerprint = compute_fingerprint(inp["service"], chain)
    culprit = culprit_frame(chain)
    observed = {
        "input": inp,
        "group": expected["group"],
        "chain": [[e.type, e.message] for e in chain],
        "in_app": [[frame_label(f, e.language) for f in e.frames if f.in_app] for e in chain],
        "instrumentation": [[frame_label(f, e.language) for f in e.frames if f.instrumentation] for e in chain],
        "culprit": frame_label(*culprit) if culprit else None,
        "fingerprint_fields": fingerprint.fields,
    }
    return observed, fingerprint.hex


def test_every_language_has_golden_stacks():
    """The corpus covers every stack format the parser claims to support."""
    assert {p.parent.name for p in CASES} >= {
        "python", "node", "go", "java", "dotnet", "ruby", "php", "browser", "rust", "elixir", "swift", "cpp",
    }
    assert all(p.with_suffix(".expected.json").exists() for p in CASES)


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden_stack(path: Path):
    """Chain, in-app/instrumentation frames, culprit and fingerprint inputs match the sidecar."""
    observed, _ = _observed(path)
    assert observed == json.loads(path.with_suffix(".expected.json").read_text())


def test_groups_join_same_bug_and_split_different_bugs():
    """Same group name ⇔ same fingerprint, across releases, -trimpath builds and agent upgrades."""
    by_group: dict[str, set[str]] = {}
    for path in CASES:
        observed, key = _observed(path)
        by_group.setdefault(str(observed["group"]), set()).add(key)
    assert all(len(keys) == 1 for keys in by_group.values()), by_group
    all_keys = [next(iter(keys)) for keys in by_group.values()]
    assert len(all_keys) == len(set(all_keys)), "two different bugs share a fingerprint"
    assert sum(1 for p in CASES if json.loads(p.with_suffix(".expected.json").read_text())["group"] == "go-quote-parse") == 2
