"""The exceptions otel-autoheal raises.

Every error the package raises on purpose derives from one root::

    AutohealError
    ├── ConfigError          a setting is missing or invalid, or its address cannot be bound (names the key)
    │   └── SinkSettingError  a GitHub sink setting is invalid (also a SinkConfigError, below)
    ├── OTLPDecodeError      a request body is not valid OTLP
    │   └── PayloadTooLarge  a request (or its decompressed body) exceeds the size limit
    ├── Overloaded           the pipeline is behind (raised by the assembler): answered 503 + Retry-After /
    │   │                    UNAVAILABLE, the sender retries
    │   └── JournalUnavailable  a request's errors could not be journalled in time (receive/journal.py;
    │                            also a StateError)
    ├── StateError           the state cannot be used: an SQLite file unreadable, damaged or replaced while
    │                        running, a PostgreSQL database unreachable; or a newer schema (names which)
    │   ├── StateBusy        the write lock could not be had within the wait asked for
    │   └── JournalUnavailable  (also an Overloaded, above)
    ├── SourceMapError       a build directory or source map given to ``sourcemaps upload`` cannot be used
    └── SinkError            an issue sink failed
        ├── SinkConfigError  the sink's settings are wrong (bad token, unknown repository); not retried
        └── SinkUnavailable  a transient failure (outage, rate limit); the work stays queued
"""

from __future__ import annotations

__all__ = [
    "AutohealError",
    "ConfigError",
    "OTLPDecodeError",
    "Overloaded",
    "PayloadTooLarge",
    "SinkConfigError",
    "SinkError",
    "SinkSettingError",
    "SinkUnavailable",
    "SourceMapError",
    "StateBusy",
    "StateError",
]


class AutohealError(Exception):
    """Root of every error raised on purpose by otel-autoheal."""


class ConfigError(AutohealError):
    """A configuration value is missing or invalid; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class OTLPDecodeError(AutohealError):
    """A request body could not be decoded as OTLP."""


class PayloadTooLarge(OTLPDecodeError):
    """A request body, compressed or not, is larger than the configured limit."""


class Overloaded(AutohealError):
    """The pipeline is behind: receivers should answer with a retryable status."""


class StateError(AutohealError):
    """The state database could not be read or written."""


class StateBusy(StateError):
    """Another writer (thread or process) held the state's write lock for longer than the caller would wait."""


class SourceMapError(AutohealError):
    """A build directory or source map cannot be uploaded (not found, not a version 3 map); names the file."""


class SinkError(AutohealError):
    """An issue sink failed to file or update an issue."""


class SinkConfigError(SinkError):
    """The sink is misconfigured (wrong token, repository or permissions): retrying will not help."""


class SinkSettingError(ConfigError, SinkConfigError):
    """A sink setting is missing or invalid: keyed like every ``ConfigError``, refused like a ``SinkConfigError``."""


class SinkUnavailable(SinkError):
    """The sink is temporarily unavailable (outage, rate limit): the work is kept and retried."""
