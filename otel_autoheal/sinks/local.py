"""The embedded default sink: the SQLite state store *is* the issue store."""

from __future__ import annotations

from typing import Any

from otel_autoheal.model import GroupUpdate

__all__ = ["LocalSink"]


class LocalSink:
    """Keeps issues in the local state store only; ``otel-autoheal issues`` reads them."""

    name = "local"

    def __init__(self) -> None:
        self._filed = 0

    def handle(self, update: GroupUpdate) -> None:
        if update.is_new:
            self._filed += 1

    def status(self) -> dict[str, Any]:
        return {"sink": self.name, "issues_filed": self._filed}

    def close(self, timeout: float = 5.0) -> None:
        return None
