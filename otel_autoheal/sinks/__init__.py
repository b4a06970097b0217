"""Issue sinks: where grouped errors end up."""

from otel_autoheal.sinks.base import Sink
from otel_autoheal.sinks.local import LocalSink
from otel_autoheal.sinks.memory import MemorySink

__all__ = ["LocalSink", "MemorySink", "Sink"]
