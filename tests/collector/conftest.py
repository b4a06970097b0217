"""Fixtures for the collector tests: real otelcol-autoheal and Jaeger binaries on free ports."""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Iterator

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from collector_stack import Binaries, Jaeger, ensure_binaries, start_jaeger  # noqa: E402
from otlp_sink import OtlpSink  # noqa: E402

_HERE = pathlib.Path(__file__).resolve().parent
_build: dict[str, Binaries | BaseException] = {}


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the binaries before any test runs when collector tests were collected.

    A cold build takes many minutes; done here it is not charged to the first test's timeout.
    Errors are kept and raised by the fixture, so they fail the tests instead of the session.
    """
    if _build or not any(_HERE in pathlib.Path(item.path).parents for item in session.items):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("tests/collector: collector-config/build.sh (cached binaries: instant; cold: minutes)")
    try:
        _build["bins"] = ensure_binaries()
    except BaseException as exc:  # kept for the fixture; KeyboardInterrupt still stops the build
        if isinstance(exc, KeyboardInterrupt):
            raise
        _build["bins"] = exc


@pytest.fixture(scope="session")
def collector_binaries() -> Binaries:
    """Build (or reuse from the cache) otelcol-autoheal and jaeger; fail loudly when that fails."""
    if "bins" not in _build:
        _build["bins"] = ensure_binaries()
    result = _build["bins"]
    if isinstance(result, BaseException):
        raise result
    return result


@pytest.fixture(scope="module")
def jaeger(
    collector_binaries: Binaries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Jaeger]:
    instance = start_jaeger(collector_binaries.jaeger, tmp_path_factory.mktemp("jaeger"))
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def autoheal_sink() -> Iterator[OtlpSink]:
    """In-test OTLP/gRPC receiver standing in for otel-autoheal."""
    sink = OtlpSink()
    try:
        yield sink
    finally:
        sink.stop()
