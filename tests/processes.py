"""Stopping the child processes tests start, each in its own process group (``start_new_session=True``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Any

__all__ = ["stop_process_group"]


def stop_process_group(proc: subprocess.Popen[Any], grace: float = 15.0, sig: int = signal.SIGTERM) -> None:
    """Send ``sig`` to the process's group, wait ``grace`` seconds for it to end, then SIGKILL the group.

    Signalling the group reaches what the process started too (a collector's children, an app's
    workers); a group that is already gone is not an error.
    """
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
