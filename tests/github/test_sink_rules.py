"""The pure rules: the version order used for regressions (the policy's rules: test_policy.py)."""

from __future__ import annotations

import pytest

from otel_autoheal.sinks.github.versions import newest_version, not_older


@pytest.mark.parametrize(
    ("version", "closed", "seen", "reopens"),
    [
        ("2.1.0", "2.0.0", [], True),
        ("2.0.0", "2.0.0", [], True),
        ("1.9.9", "2.0.0", [], False),
        ("2.0.0rc1", "2.0.0", [], False),
        ("10.0", "9.0", [], True),  # numeric, not string, order
        ("", "2.0.0", [], True),
        ("1.0", "", [], True),
        ("build-blue", "build-green", ["build-blue", "build-green"], False),  # seen before the close: older
        ("build-red", "build-green", ["build-blue", "build-green"], True),  # new since the close
        ("abc123", "2.0.0", ["abc123"], False),
    ],
)
def test_version_rule(version: str, closed: str, seen: list[str], reopens: bool) -> None:
    """PEP 440 order when both parse, else 'older' means seen before the close."""
    assert not_older(version, closed, seen) is reopens


def test_newest_version_at_close() -> None:
    """The closing version is the highest PEP 440 version, else the latest one first seen."""
    assert newest_version([("1.10.0", 1.0), ("1.9.0", 2.0)]) == "1.10.0"
    assert newest_version([("blue", 1.0), ("green", 2.0), ("1.0", 3.0)]) == "1.0"
    assert newest_version([("blue", 1.0), ("green", 2.0)]) == "green"
    assert newest_version([]) == ""
