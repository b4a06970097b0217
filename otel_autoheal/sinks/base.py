"""The interface every issue sink implements."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from otel_autoheal.model import GroupUpdate

__all__ = ["Sink"]


@runtime_checkable
class Sink(Protocol):
    """Receives every recorded occurrence and keeps an issue tracker in step with the groups.

    Contract:
    - ``handle`` is called once per occurrence, in order, from one pipeline thread, *after* the
      state store has recorded the occurrence (so ``update.group.count`` includes it). Occurrences
      recorded in one batch are handed on after its commit, each with the group's count, times and
      versions as of that occurrence and the title and body rendered once for the batch.
    - ``handle`` must not raise for transient failures: a sink that talks to a remote service
      queues the work durably and returns; it may raise ``SinkConfigError`` only at start-up.
    - ``status`` returns a JSON-serialisable dict for ``otel-autoheal status`` and /metrics; it
      never contains secrets.
    - ``close`` is idempotent and returns within ``timeout`` seconds.
    """

    name: str

    def handle(self, update: GroupUpdate) -> None: ...

    def status(self) -> dict[str, Any]: ...

    def close(self, timeout: float = 5.0) -> None: ...
