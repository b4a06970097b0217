"""JavaScript stacks: V8 (Node, Chromium) ``at f (file:l:c)`` and Firefox/Safari ``f@file:l:c``.

``error.stack`` holds one exception. Node's ``util.inspect`` (what loggers print) adds the
properties after the last frame: ``[cause]: Error: …`` starts the cause with its own frames, and
an ``AggregateError``'s ``[errors]: [ Error: a …, Error: b … ]`` lists its errors, each with frames.
"""

from __future__ import annotations

import re

from otel_autoheal.group.inapp import InAppRules
from otel_autoheal.group.stacktrace._common import cap_frames, make_frame, split_location, split_type_message
from otel_autoheal.model import Frame, ParsedException

__all__ = ["parse_javascript"]

# No leading "\s*": it would overlap with the function's own "[^@]*" and make long lines quadratic.
_GECKO_FRAME = re.compile(r"^(?P<func>[^@]*)@(?P<loc>\S+:\d+(?::\d+)?)\s*$")
_CAUSE = re.compile(r"^\s*\[cause\]: (?P<header>.*?)\s*\{?$")
_ERRORS = re.compile(r"^\s*\[errors\]: \[\s*$")
#: ``util.inspect`` elides frames a cause shares with the error: "... 4 lines matching cause stack trace ...".
#: An error's first line ("TypeError: x", "Error [ERR_X]: y"), not one of its properties ("code: 'E'").
_ERROR_HEADER = re.compile(r"^[A-Z][\w$.]*(?::| \[|$)")
_ELIDED = re.compile(r"^\s*\.\.\. \d+ lines? matching cause stack trace \.\.\.\s*$")


def _v8_frame(line: str) -> tuple[str, str] | None:
    """``at f (loc)`` → (f, loc); ``at loc`` → ("<anonymous>", loc); ``util.inspect``'s trailing `` {``/``,`` dropped."""
    body = line.strip()
    if not body.startswith("at "):
        return None
    body = body[3:].rstrip(" {,")
    # The location is the text after the first " (" when the line closes with ")" (V8 prints
    # "async Promise.all (index 0)" and "eval (eval at f (a.js:1:2), <anonymous>:1:1)" this way).
    paren = body.find(" (")
    if paren > 0 and body.endswith(")"):
        return body[:paren], body[paren + 2:-1]
    return "<anonymous>", body


class _Exception:
    def __init__(self, header: str = "") -> None:
        self.header = [header] if header else []
        self.frames: list[Frame] = []


def parse_javascript(text: str, rules: InAppRules, fallback_type: str) -> list[ParsedException]:
    """The error first, then its ``[cause]`` chain and ``[errors]`` (each once, in printed order)."""
    exceptions = [_Exception()]
    in_errors = False
    for line in text.splitlines():
        current = exceptions[-1]
        v8 = _v8_frame(line)
        if v8:
            func, loc = v8
            for prefix in ("async ", "new "):
                func = func.removeprefix(prefix)
            filename, lineno, colno = split_location(loc)
            current.frames.append(make_frame(rules, "javascript", filename, func.strip(), lineno, colno))
            continue
        gecko = _GECKO_FRAME.match(line)
        if gecko and ("/" in gecko.group("loc") or ":" in gecko.group("loc")):
            filename, lineno, colno = split_location(gecko.group("loc"))
            # Firefox marks async boundaries as "cause*name" ("async*load", "setTimeout handler*").
            func = gecko.group("func").rsplit("*", 1)[-1].strip() or "<anonymous>"
            current.frames.append(make_frame(rules, "javascript", filename, func, lineno, colno))
            continue
        stripped = line.strip()
        cause = _CAUSE.match(line)
        if cause and current.frames and _ERROR_HEADER.match(cause.group("header")):
            exceptions.append(_Exception(cause.group("header")))
            continue
        if _ERRORS.match(line) and current.frames:
            in_errors = True
            continue
        if in_errors and current.frames and _ERROR_HEADER.match(stripped):
            # The next error of the list: a "Type: message" line right after the previous one's frames.
            exceptions.append(_Exception(stripped.rstrip(",")))
            continue
        if not current.frames and stripped and not _ELIDED.match(line):
            current.header.append(stripped)
    chain = []
    for index, exc in enumerate(exceptions):
        if index and not exc.frames and not exc.header:
            continue
        exc_type, message = split_type_message(exc.header[0], fallback_type) if exc.header else (fallback_type, "")
        if len(exc.header) > 1:
            message = "\n".join([message, *exc.header[1:]])
        exc.frames.reverse()  # JS prints the innermost frame first.
        chain.append(ParsedException(exc_type, message, cap_frames(exc.frames), "javascript"))
    return chain
