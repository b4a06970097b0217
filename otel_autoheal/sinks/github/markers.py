"""The header the sink writes at the top of every issue body, and the only place it trusts it.

Line 1 is the fingerprint marker, line 2 the ``autoheal:data`` block (one JSON object in an HTML
comment). Error text inside the body can contain the same strings (an attacker can put any
group's marker into an exception message), so a marker counts only at that fixed place, and
only on an issue authored by the token's own identity (checked by the callers). The parser is
the one the repository's gate runs (``onboarding/templates/gate.py`` is stdlib-only and copied
into repositories), so the service and the gate can never disagree about what an intact
header is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from otel_autoheal.onboarding.templates.gate import DATA_PREFIX, DATA_SUFFIX, MARKER_RE, parse_header

__all__ = ["data_line", "marker_for", "parse_header", "replace_data", "strip_header", "with_header"]

#: Above this the data block keeps only the keys the gate and the scaffold need first.
_MAX_DATA_LINE = 4000
_CORE_KEYS = ("fingerprint", "exception_type", "service", "source", "trusted_source", "provenance", "count", "in_app")


def marker_for(fingerprint: str) -> str:
    """Line 1 of every issue body the sink files."""
    return f"<!-- autoheal:fingerprint={fingerprint} -->"


def _encode(data: Mapping[str, Any]) -> str:
    text = json.dumps(dict(data), ensure_ascii=True, separators=(",", ":"), default=str)
    # "--" may not appear inside an HTML comment; JSON allows "-" as \u002d (and <, > likewise).
    return text.replace("-", "\\u002d").replace(">", "\\u003e").replace("<", "\\u003c")


def data_line(data: Mapping[str, Any]) -> str:
    """Line 2: ``data`` as an ``autoheal:data`` comment, trimmed to the core keys when large."""
    text = _encode(data)
    if len(text) > _MAX_DATA_LINE:
        text = _encode({k: data[k] if not isinstance(data[k], str) else data[k][:300]
                        for k in _CORE_KEYS if k in data})
    return f"{DATA_PREFIX}{text}{DATA_SUFFIX}"


def strip_header(body: str) -> str:
    """``body`` without leading marker / data lines (the renderer writes its own there)."""
    lines = body.split("\n")
    while lines and (MARKER_RE.fullmatch(lines[0].rstrip("\r"))
                     or (lines[0].startswith(DATA_PREFIX) and lines[0].rstrip("\r").endswith(DATA_SUFFIX))):
        lines.pop(0)
    return "\n".join(lines)


def with_header(fingerprint: str, data: Mapping[str, Any], body: str) -> str:
    """The body to file: the service's header, then ``body`` without any header of its own."""
    return f"{marker_for(fingerprint)}\n{data_line({**data, 'fingerprint': fingerprint})}\n{strip_header(body)}"


def replace_data(body: str, changes: Mapping[str, Any]) -> str | None:
    """``body`` with ``changes`` merged into its data block, or None when its header is not intact."""
    data = parse_header(body)
    if data is None:
        return None
    parts = body.split("\n", 2)
    rest = parts[2] if len(parts) > 2 else ""
    return f"{parts[0]}\n{data_line({**data, **changes, 'fingerprint': data['fingerprint']})}\n{rest}"
