"""JavaScript stacks: V8 (Node, Chromium) ``at f (file:l:c)`` and Firefox/Safari ``f@file:l:c``."""

from __future__ import annotations

import re

from otel_autoheal.group.inapp import InAppRules
from otel_autoheal.group.stacktrace._common import cap_frames, make_frame, split_location, split_type_message
from otel_autoheal.model import Frame, ParsedException

__all__ = ["parse_javascript"]

_V8_FRAME = re.compile(r"^\s*at (?:(?P<func>.+?) \((?P<loc>.+)\)|(?P<bare>.+))\s*$")
_GECKO_FRAME = re.compile(r"^\s*(?P<func>[^@]*)@(?P<loc>\S+:\d+(?::\d+)?)\s*$")


def parse_javascript(text: str, rules: InAppRules, fallback_type: str) -> list[ParsedException]:
    """One exception; the lines before the first frame are its header."""
    frames: list[Frame] = []
    header: list[str] = []
    for line in text.splitlines():
        v8 = _V8_FRAME.match(line)
        if v8 and line.lstrip().startswith("at "):
            func = (v8.group("func") or "<anonymous>").strip()
            loc = v8.group("loc") or v8.group("bare") or ""
            for prefix in ("async ", "new "):
                func = func.removeprefix(prefix)
            filename, lineno, colno = split_location(loc)
            frames.append(make_frame(rules, "javascript", filename, func, lineno, colno))
            continue
        gecko = _GECKO_FRAME.match(line)
        if gecko and ("/" in gecko.group("loc") or ":" in gecko.group("loc")):
            filename, lineno, colno = split_location(gecko.group("loc"))
            # Firefox marks async boundaries as "cause*name" ("async*load", "setTimeout handler*").
            func = gecko.group("func").rsplit("*", 1)[-1].strip() or "<anonymous>"
            frames.append(make_frame(rules, "javascript", filename, func, lineno, colno))
            continue
        if not frames and line.strip():
            header.append(line.strip())
    exc_type, message = split_type_message(header[0], fallback_type) if header else (fallback_type, "")
    if len(header) > 1:
        message = "\n".join([message, *header[1:]])
    frames.reverse()  # JS prints the innermost frame first.
    return [ParsedException(exc_type, message, cap_frames(frames), "javascript")]
