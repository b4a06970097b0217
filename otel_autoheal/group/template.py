"""Message templates: variable parts of an error message masked so that messages group."""

from __future__ import annotations

import re

__all__ = ["message_template"]

#: Applied in order; earlier patterns protect their matches from later, broader ones.
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s'\"<>]+", re.I), "<url>"),
    (re.compile(r"\b[\w.+\-]+@[\w\-]+\.[\w.\-]+\b"), "<email>"),
    (re.compile(r"'(?:[^'\\\n]|\\.){0,500}'|\"(?:[^\"\\\n]|\\.){0,500}\"|`[^`\n]{0,500}`"), "<str>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.\-@~]+){2,}[\\/]?"), "<path>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"(?<![\w<])[-+]?\d+(?:[.,]\d+)*(?:e[-+]?\d+)?(?![\d.>])", re.I), "<num>"),
)

#: Longest template kept; grouping on the first few hundred characters is enough and bounds cost.
MAX_TEMPLATE_CHARS = 500


def message_template(message: str) -> str:
    """Mask numbers, hex, uuids, quoted strings, paths, URLs, emails and IPs in ``message``."""
    text = " ".join(message.split())[: MAX_TEMPLATE_CHARS * 4]
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text[:MAX_TEMPLATE_CHARS]
