"""Fingerprints: which errors are "the same" and belong to one issue.

The key is ``service.name`` + for each exception of the chain its type and its in-app frames
(module or normalised file + function; never line/column numbers or addresses). Library frames
count only when a chain has no in-app frame at all. Without any frame the key falls back to the
type + the message template.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from otel_autoheal.group.template import message_template
from otel_autoheal.model import Frame, ParsedException

__all__ = ["Fingerprint", "compute_fingerprint", "normalize_filename", "short_type"]

_URL_ORIGIN = re.compile(r"^[a-z][a-z0-9+.\-]*://[^/]*", re.I)
_CONTENT_HASH = re.compile(r"([.\-_])[0-9a-f]{6,}(?=[.\-_])|([.\-_])[0-9A-Za-z_\-]{8}(?=\.(?:m?js|css)$)")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
_SYNTHETIC_SUFFIX = re.compile(r"\$\d+")

#: Path components kept from an absolute in-app path: enough to tell files apart, few enough
#: that a checkout in another directory or machine gives the same key.
PATH_COMPONENTS_KEPT = 3


def short_type(exc_type: str) -> str:
    """``json.decoder.JSONDecodeError`` → ``JSONDecodeError``: SDKs disagree on qualification."""
    base = exc_type.split("[", 1)[0]
    return base.rsplit(".", 1)[-1] or exc_type


def normalize_filename(filename: str) -> str:
    name = filename.split("?", 1)[0].split("#", 1)[0]
    name = _URL_ORIGIN.sub("", name)
    name = name.replace("\\", "/")
    for marker in ("site-packages/", "dist-packages/", "node_modules/", "/go/pkg/mod/"):
        if marker in name:
            name = marker + name.rsplit(marker, 1)[1]
            break
    else:
        parts = [p for p in name.split("/") if p not in ("", ".")]
        name = "/".join(parts[-PATH_COMPONENTS_KEPT:])
    return _CONTENT_HASH.sub(lambda m: m.group(1) or m.group(2) or "", name)


def _frame_key(frame: Frame) -> str:
    function = _SYNTHETIC_SUFFIX.sub("$", _ADDRESS.sub("", frame.function)).strip()
    if frame.module:
        return f"{frame.module}:{function}"
    return f"{normalize_filename(frame.filename)}:{function}"


def _dedupe_recursion(keys: list[str]) -> list[str]:
    """Collapse runs of the same frame (and short repeating cycles) so recursion depth doesn't split groups."""
    out: list[str] = []
    for key in keys:
        if out and out[-1] == key:
            continue
        # A cycle of length 2..4 repeating: skip when the last cycle equals the one before it.
        out.append(key)
        for size in (2, 3, 4):
            if len(out) >= 2 * size and out[-size:] == out[-2 * size : -size]:
                del out[-size:]
                break
    return out


@dataclass(frozen=True)
class Fingerprint:
    """A group key and the human-readable parts it was made of (shown in the issue)."""

    hex: str
    fields: list[str]


def compute_fingerprint(service_name: str, chain: Sequence[ParsedException]) -> Fingerprint:
    """Compute the group key of an exception chain (reported exception first)."""
    has_in_app = any(f.in_app for exc in chain for f in exc.frames)
    fields = [f"service.name={service_name}"]
    parts = [service_name]
    for exc in chain:
        frames = [f for f in exc.frames if f.in_app] if has_in_app else list(exc.frames)
        keys = _dedupe_recursion([_frame_key(f) for f in frames])
        parts.append(short_type(exc.type))
        fields.append(f"exception.type={short_type(exc.type)}")
        if keys:
            parts.extend(keys)
            label = "in-app frames" if has_in_app else "frames"
            fields.append(f"{label}={' > '.join(keys[-8:])}{' (+%d more)' % (len(keys) - 8) if len(keys) > 8 else ''}")
        elif not any(e.frames for e in chain):
            template = message_template(exc.message)
            parts.append(template)
            fields.append(f"message template={template}")
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "replace")).hexdigest()[:32]
    return Fingerprint(digest, fields)
