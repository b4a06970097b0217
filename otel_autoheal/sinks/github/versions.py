"""Version ordering for the regression rule ("reopen only if not older than the closing version").

Rule: when both versions parse as PEP 440 (``packaging.version``), they are compared as such.
Otherwise the order is what we observed: a version is *older* than the closing version only if
it differs from it and was first seen before the issue was closed. An empty version (the
service sets no ``service.version``) is never older, and an empty closing version makes every
occurrence a regression.
"""

from __future__ import annotations

from collections.abc import Iterable

from packaging.version import InvalidVersion, Version

__all__ = ["newest_version", "not_older"]


def _parse(v: str) -> Version | None:
    try:
        return Version(v)
    except InvalidVersion:
        return None


def not_older(version: str, closed_version: str, seen_before_close: Iterable[str] = ()) -> bool:
    """True when an occurrence in ``version`` should reopen an issue closed at ``closed_version``."""
    if not version or not closed_version or version == closed_version:
        return True
    a, b = _parse(version), _parse(closed_version)
    if a is not None and b is not None:
        return a >= b
    return version not in set(seen_before_close)


def newest_version(versions: Iterable[tuple[str, float]]) -> str:
    """The newest of ``(version, first_seen)`` pairs: PEP 440 order when all parse, else latest first seen."""
    items = [(v, t) for v, t in versions if v]
    if not items:
        return ""
    parsed = [(_parse(v), v) for v, _ in items]
    if all(p is not None for p, _ in parsed):
        return max(parsed, key=lambda pv: pv[0])[1]  # type: ignore[arg-type,return-value]
    return max(items, key=lambda vt: vt[1])[0]
