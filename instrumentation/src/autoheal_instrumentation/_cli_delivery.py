"""Getting a CLI run's payload out: spool first, send from a daemon thread, never past the deadline.

Imported only when a run has something to send or the spool holds payloads of earlier runs;
the exporter (urllib, or grpcio) only when sending.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from . import _spool
from ._exceptions import debug

if TYPE_CHECKING:
    from ._config import Settings

__all__ = ["deliver", "start_spool_flush"]

#: Most spooled payloads one run sends for earlier runs; the rest wait for the next run.
_FLUSH_BATCH = 20
#: The backlog flush gets at least this long even with AUTOHEAL_EXPORT_TIMEOUT=0.
_MIN_FLUSH_SECONDS = 0.05


def deliver(settings: Settings, traces: bytes, logs: bytes, deadline: float, after: threading.Thread | None) -> None:
    """Spool first, then send in a daemon thread; give up at the deadline and leave it spooled.

    ``after`` (the backlog flush thread) is waited for before sending: older errors reach the
    service before this one, so the issue body, which shows the last occurrence received, shows
    this run's context rather than a replayed one's.
    """
    from ._export import send

    path = _spool.write(
        settings.spool_dir, traces, logs, settings.spool_max_files, settings.spool_max_bytes, claimed=True
    )
    if settings.export_timeout <= 0:
        if path is not None:
            _spool.release(path, sent=False)
        return
    done = threading.Event()
    outcome = [False]

    def work() -> None:
        if after is not None:
            after.join(max(0.0, deadline - time.monotonic()))
        ok = send(traces, logs, settings, deadline)
        outcome[0] = ok
        if path is not None and ok:
            _spool.release(path, sent=True)
        done.set()

    threading.Thread(target=work, name="otel-autoheal-export", daemon=True).start()
    done.wait(max(0.0, deadline - time.monotonic()))
    if not outcome[0] and path is not None:
        _spool.release(path, sent=False)


def start_spool_flush(settings: Settings) -> threading.Thread:
    """Send earlier runs' spooled payloads in a daemon thread, oldest first, within the export timeout."""
    deadline = time.monotonic() + max(settings.export_timeout, _MIN_FLUSH_SECONDS)
    thread = threading.Thread(target=_flush_spool, args=(settings, deadline), name="otel-autoheal-spool", daemon=True)
    thread.start()
    return thread


def _flush_spool(settings: Settings, deadline: float) -> None:
    try:
        from ._export import send  # urllib (~40 ms) loads in this thread, not at the host's start

        for path in _spool.pending(settings.spool_dir)[:_FLUSH_BATCH]:
            if time.monotonic() >= deadline:
                return
            claimed = _spool.claim(path)
            if claimed is None:
                continue
            payload = _spool.read(claimed)
            if payload is None:
                _spool.release(claimed, sent=True)  # not ours or damaged: drop it
                continue
            ok = send(payload[0], payload[1], settings, deadline)
            _spool.release(claimed, sent=ok)
            if not ok:
                return  # endpoint unavailable: keep the rest for a later run
    except Exception as exc:
        debug("otel-autoheal: spool flush failed: %r", exc)

