"""Fixtures for the collector tests: real otelcol-autoheal and Jaeger binaries on free ports."""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Iterator

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from otlp_sink import OtlpSink  # noqa: E402
from stack import Binaries, Jaeger, ensure_binaries, start_jaeger  # noqa: E402


@pytest.fixture(scope="session")
def collector_binaries() -> Binaries:
    """Build (or reuse from the cache) otelcol-autoheal and jaeger; fail loudly when that fails."""
    return ensure_binaries()


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
