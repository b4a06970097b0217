"""Durable state: groups, their occurrences, and (for remote sinks) their own tables."""

from otel_autoheal.state.sqlite import SQLiteStore

__all__ = ["SQLiteStore"]
