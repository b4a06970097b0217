"""Source lines around the failing lines of in-app frames, as an instrumentation sent them.

The Python instrumentation captures, at failure time only, the lines around each in-app frame's
line and sends them as the ``autoheal.source_context`` attribute of the exception (span event and
log record): an array of strings, one JSON object per frame::

    {"file": "/srv/shop/app/cli.py", "line": 42, "function": "main",
     "pre": ["…", …], "context": "    raise …", "post": ["…", …], "path": "app/cli.py"}

``file`` and ``line`` are exactly what the stack trace text says, so the entry is matched to a
parsed frame by them; ``path`` (optional) is the file relative to its repository checkout. An array
of small strings survives OTLP, collectors and the service's per-value cap (4,000 characters for
non-``exception.*`` attributes) without a schema of its own.

The attribute is the sender's word: it is bounded (entries, lines, characters), scrubbed here
like every other text, attached only to frames the service itself judges in-app, and never read by
grouping (the fingerprint is computed from the parsed frames' paths and functions alone).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from otel_autoheal.model import ExceptionRecord, Frame, ParsedException
from otel_autoheal.scrub import Scrubber

__all__ = [
    "CONTEXT_LINES",
    "MAX_ENTRIES",
    "MAX_LINE_CHARS",
    "SOURCE_CONTEXT_KEY",
    "Linker",
    "SourceEntry",
    "annotate_chain",
    "decode_source_context",
    "scrub_context",
]

#: The attribute (span event or log record of the exception) that carries the source lines.
SOURCE_CONTEXT_KEY = "autoheal.source_context"
#: Lines shown on each side of the failing line.
CONTEXT_LINES = 5
#: Entries read from one exception (the innermost in-app frames are sent first).
MAX_ENTRIES = 16
#: Longest source line kept (after scrubbing, so a secret is never cut before it is recognised).
MAX_LINE_CHARS = 200
#: Longest path or function name read from an entry.
_MAX_NAME_CHARS = 1000


@dataclass(frozen=True)
class SourceEntry:
    """One frame's source lines, decoded and bounded but not yet scrubbed."""

    file: str
    line: int
    pre: tuple[str, ...]
    context: str
    post: tuple[str, ...]
    path: str = ""


def _lines(value: Any, keep: str) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return tuple(value[-CONTEXT_LINES:] if keep == "tail" else value[:CONTEXT_LINES])


def _entry(text: Any) -> SourceEntry | None:
    if not isinstance(text, str):
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # cut by a size cap on the way, or not ours: no lines
        return None
    if not isinstance(data, dict):
        return None
    file, line, context = data.get("file"), data.get("line"), data.get("context")
    pre, post = _lines(data.get("pre", []), "tail"), _lines(data.get("post", []), "head")
    path = data.get("path", "")
    if (
        not isinstance(file, str) or not file or len(file) > _MAX_NAME_CHARS
        or isinstance(line, bool) or not isinstance(line, int) or not 0 < line < 10_000_000
        or not isinstance(context, str) or pre is None or post is None
        or not isinstance(path, str) or len(path) > _MAX_NAME_CHARS
    ):
        return None
    return SourceEntry(file, line, pre, context, post, path)


def decode_source_context(value: Any) -> tuple[str, ...]:
    """The raw attribute value → at most ``MAX_ENTRIES`` strings (anything else is ignored)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(v for v in value[:MAX_ENTRIES] if isinstance(v, str))


def _cut(line: str) -> str:
    line = line.rstrip("\n")
    return line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…"


def scrub_context(
    pre: Sequence[str], context: str, post: Sequence[str], scrubber: Scrubber
) -> tuple[tuple[str, ...], str, tuple[str, ...]] | None:
    """Scrub the lines as one text (a secret may span lines: PEM keys), then cut each line.

    ``None`` when scrubbing changed the number of lines (a multi-line secret was redacted): the
    lines no longer line up with their numbers, so none are shown.
    """
    lines = [line.replace("\n", " ") for line in (*pre, context, *post)]
    scrubbed = scrubber.text("\n".join(lines)).split("\n")
    if len(scrubbed) != len(lines):
        return None
    cut = [_cut(line) for line in scrubbed]
    return tuple(cut[: len(pre)]), cut[len(pre)], tuple(cut[len(pre) + 1:])


def _with_context(frame: Frame, entry: SourceEntry | None, scrubber: Scrubber) -> Frame:
    if entry is not None and frame.context_line is None:
        pre, context, post = entry.pre, entry.context, entry.post
    elif frame.context_line is not None:  # filled earlier (a source map): scrubbed here all the same
        pre, context, post = frame.pre_context, frame.context_line, frame.post_context
    else:
        return frame
    scrubbed = scrub_context(pre, context, post, scrubber)
    if scrubbed is None:
        return replace(frame, pre_context=(), context_line=None, post_context=())
    return replace(frame, pre_context=scrubbed[0], context_line=scrubbed[1], post_context=scrubbed[2])


#: ``link(frame, record, sent_path)`` → the frame's URL or ``None`` (``CodeLinker.link``).
Linker = Callable[[Frame, ExceptionRecord, str], "str | None"]


def annotate_chain(
    record: ExceptionRecord, scrubber: Scrubber, link: Linker | None = None
) -> list[ParsedException]:
    """``record.chain`` with source lines (scrubbed) and, through ``link(frame, record)``, code
    links on its in-app frames. Other frames are returned untouched."""
    entries: dict[tuple[str, int], SourceEntry] = {}
    for text in record.source_context[:MAX_ENTRIES]:
        entry = _entry(text)
        if entry is not None:
            entries.setdefault((entry.file, entry.line), entry)
    chain = []
    for parsed in record.chain:
        frames = []
        for frame in parsed.frames:
            if frame.in_app and not frame.instrumentation:
                entry = entries.get((frame.filename, frame.lineno or 0))
                frame = _with_context(frame, entry, scrubber)
                if link is not None:
                    frame = replace(frame, source_link=link(frame, record, entry.path if entry else ""))
            frames.append(frame)
        chain.append(replace(parsed, frames=tuple(frames)))
    return chain
