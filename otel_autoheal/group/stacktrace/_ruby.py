"""Ruby backtraces (``file:line:in 'method'``; the first line may carry ``: message (Type)``)."""

from __future__ import annotations

import re

from otel_autoheal.group.inapp import InAppRules
from otel_autoheal.group.stacktrace._common import cap_frames, make_frame
from otel_autoheal.model import Frame, ParsedException

__all__ = ["parse_ruby"]

_RUBY_FRAME = re.compile(r"^\s*(?:from )?(?P<file>[^\s:][^:]*):(?P<line>\d+):in [`'](?P<func>[^'`]+)'(?P<rest>.*)$")


def parse_ruby(text: str, rules: InAppRules, fallback_type: str) -> list[ParsedException]:
    """One exception (``RuntimeError`` unless the first line names its type)."""
    frames: list[Frame] = []
    exc_type, message = "RuntimeError", ""
    for index, line in enumerate(text.splitlines()):
        match = _RUBY_FRAME.match(line)
        if not match:
            continue
        if index == 0 and match.group("rest").startswith(": "):
            rest = match.group("rest")[2:]
            tail = re.search(r"\((?P<type>[A-Z][\w:]*)\)\s*$", rest)
            if tail:
                exc_type, message = tail.group("type"), rest[: tail.start()].strip()
            else:
                message = rest
        filename = match.group("file")
        frames.append(make_frame(rules, "ruby", filename, match.group("func"), int(match.group("line"))))
    frames.reverse()  # Ruby prints the innermost frame first.
    return [ParsedException(exc_type, message, cap_frames(frames), "ruby")]
