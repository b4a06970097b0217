"""The distribution's version, read from its installed metadata (pyproject.toml is the only source).

Read on first use, not at import: ``importlib.metadata`` costs a CLI start ~30 ms, and a failing
run, which has loaded most of what it needs by then, 7-10 ms (measured).
"""

from __future__ import annotations

__all__ = ["DISTRIBUTION", "version"]

#: The name this package is installed under (``[project] name`` in instrumentation/pyproject.toml).
DISTRIBUTION = "otel-autoheal-instrumentation"

#: What a source tree that was never installed reports (PEP 440: sorts before every release).
_UNKNOWN = "0+unknown"

_cached: list[str] = []


def version() -> str:
    """The installed version of otel-autoheal-instrumentation, or ``0+unknown`` from an uninstalled tree."""
    if not _cached:
        try:
            from importlib.metadata import version as installed_version

            _cached.append(installed_version(DISTRIBUTION))
        except Exception:  # PackageNotFoundError, or metadata unreadable: never fail the host for it
            _cached.append(_UNKNOWN)
    return _cached[0]
