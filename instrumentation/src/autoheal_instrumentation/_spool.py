"""A bounded on-disk queue of OTLP payloads that could not be sent yet.

Each payload is one file, written atomically. A process claims a file by renaming it before
sending, so two CLIs flushing at once do not send it twice; claims of dead processes expire.
"""

from __future__ import annotations

import os
import struct
import time

__all__ = ["claim", "pending", "read", "release", "write"]

_MAGIC = b"AHS1"
_SUFFIX = ".otlp"
_CLAIM = ".sending"
_STALE_CLAIM_SECONDS = 30.0


def _encode(traces: bytes, logs: bytes) -> bytes:
    return _MAGIC + struct.pack(">I", len(traces)) + traces + struct.pack(">I", len(logs)) + logs


def read(path: str) -> tuple[bytes, bytes] | None:
    """Decode a spool file; None when it is not one of ours or is damaged."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        if not data.startswith(_MAGIC):
            return None
        (n,) = struct.unpack_from(">I", data, 4)
        traces = data[8 : 8 + n]
        (m,) = struct.unpack_from(">I", data, 8 + n)
        logs = data[12 + n : 12 + n + m]
        if len(traces) != n or len(logs) != m:
            return None
        return traces, logs
    except (OSError, struct.error):
        return None


def write(spool_dir: str, traces: bytes, logs: bytes, max_files: int, max_bytes: int, *, claimed: bool) -> str | None:
    """Store a payload; returns its path (claimed by this process when ``claimed``)."""
    try:
        os.makedirs(spool_dir, mode=0o700, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(4).hex()}{_SUFFIX}"
        final = os.path.join(spool_dir, name)
        target = f"{final}.{os.getpid()}{_CLAIM}" if claimed else final
        tmp = os.path.join(spool_dir, f".{name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(_encode(traces, logs))
        os.replace(tmp, target)
        _trim(spool_dir, max_files, max_bytes)
        return target
    except OSError as exc:
        import logging  # only on failure: the start-up path must not import logging

        logging.getLogger("autoheal_instrumentation").debug("otel-autoheal: cannot spool: %r", exc)
        return None


def _trim(spool_dir: str, max_files: int, max_bytes: int) -> None:
    entries = []
    for entry in os.scandir(spool_dir):
        if entry.name.endswith(_SUFFIX) or entry.name.endswith(_CLAIM):
            try:
                entries.append((entry.name, entry.path, entry.stat().st_size))
            except OSError:
                continue
    entries.sort()  # names start with a zero-padded timestamp: oldest first
    total = sum(size for _, _, size in entries)
    while entries and (len(entries) > max_files or total > max_bytes):
        _, path, size = entries.pop(0)
        total -= size
        try:
            os.unlink(path)
        except OSError:
            pass


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # os.kill would terminate the process on Windows; rely on the claim's age there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def pending(spool_dir: str) -> list[str]:
    """Unclaimed payloads (and expired claims), oldest first. Cheap when the directory is absent."""
    try:
        it = os.scandir(spool_dir)
    except OSError:
        return []
    out: list[str] = []
    with it:
        for entry in it:
            name = entry.name
            if name.endswith(_SUFFIX):
                out.append(entry.path)
            elif name.endswith(_CLAIM):
                pid_text = name[: -len(_CLAIM)].rsplit(".", 1)[-1]
                try:
                    stale = not _pid_alive(int(pid_text)) or time.time() - entry.stat().st_mtime > _STALE_CLAIM_SECONDS
                except (ValueError, OSError):
                    stale = True
                if stale:
                    out.append(entry.path)
    out.sort(key=os.path.basename)
    return out


def claim(path: str) -> str | None:
    """Take a payload for sending; None when another process was faster."""
    base = path[: -len(_CLAIM)].rsplit(".", 1)[0] if path.endswith(_CLAIM) else path
    target = f"{base}.{os.getpid()}{_CLAIM}"
    try:
        os.rename(path, target)
        return target
    except OSError:
        return None


def release(claimed: str, *, sent: bool) -> None:
    """Delete a sent payload, or put it back for a later run."""
    try:
        if sent:
            os.unlink(claimed)
        else:
            base = claimed[: -len(_CLAIM)].rsplit(".", 1)[0]
            os.rename(claimed, base)
    except OSError:
        pass
