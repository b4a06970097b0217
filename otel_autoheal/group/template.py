"""Message templates: variable parts of an error message masked so that messages group."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

__all__ = ["merge_varying", "message_template", "title_template"]

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


#: A quoted string that names code (a property, method, class or signature) rather than data:
#: ``'zone'``, ``"com.acme.Sku.price()"``, ``"Catalog.find(String)"``. Titles keep these until
#: two occurrences of the group disagree on them.
_CODE_QUOTE = re.compile(r"""(['"`])([A-Za-z_$][\w$]*(?:\.[A-Za-z_$<>][\w$<>]*)*(?:\([\w$.,\s\[\]<>]*\))?)\1""")
_KEPT = "\ue000"


def title_template(message: str, previous: str = "", constants: Sequence[str] = ()) -> str:
    """``message`` for a title: data masked, code names kept, then whatever differs from ``previous`` masked.

    ``previous`` is the same group's earlier title text (already masked); tokens where the two
    disagree are masked, so that a title masks exactly what varies across the group.
    ``constants`` are texts known not to vary (a span name: low-cardinality by the OpenTelemetry
    specification), kept verbatim even when they look like data (``okey-dokey-0``).
    """
    kept: list[str] = []

    def keep(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"{_KEPT}{chr(0xE100 + len(kept) - 1)}{_KEPT}"

    text = " ".join(message.split())[: MAX_TEMPLATE_CHARS * 4]
    for constant in sorted({" ".join(c.split()) for c in constants if c.strip()}, key=len, reverse=True):
        text = re.sub(rf"(?<![\w.\-/]){re.escape(constant)}(?![\w\-/])", keep, text)
    text = message_template(_CODE_QUOTE.sub(keep, text))
    text = re.sub(f"{_KEPT}(.){_KEPT}", lambda m: kept[ord(m.group(1)) - 0xE100], text)
    return merge_varying(previous, text) if previous else text


def merge_varying(previous: str, current: str) -> str:
    """``current`` with the words that differ from ``previous`` masked (``<str>``, ``<num>``… or ``<…>``)."""
    old, new = previous.split(), current.split()
    if old == new:  # the common case (a recurring error): nothing varies, no diff needed
        return " ".join(new)
    out: list[str] = []
    for op, _i1, _i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if op == "equal":
            out.extend(new[j1:j2])
        elif j2 > j1:
            changed = message_template(" ".join(new[j1:j2]))
            out.append(changed if changed != " ".join(new[j1:j2]) else "<…>")
    return " ".join(out)
