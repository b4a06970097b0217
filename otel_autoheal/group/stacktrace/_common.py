"""What every language's parser shares: frame construction, the frame cap, header and location splitting."""

from __future__ import annotations

import re

from otel_autoheal.group.inapp import InAppRules
from otel_autoheal.model import Frame

__all__ = ["MAX_FRAMES", "cap_frames", "make_frame", "split_location", "split_type_message"]

#: Frames kept per exception; deeper traces keep the outermost and innermost halves.
MAX_FRAMES = 200

_LOCATION = re.compile(r"^(?P<file>.+?)(?::(?P<line>\d+))?(?::(?P<col>\d+))?$")
_TYPE_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(?:\[[^\]]*\])?)(?::\s?(?P<msg>.*))?$")


def make_frame(
    rules: InAppRules,
    language: str,
    filename: str,
    function: str,
    lineno: int | None = None,
    colno: int | None = None,
    module: str | None = None,
    source_line: str | None = None,
    package: str = "",
) -> Frame:
    """A frame classified as in-app and/or instrumentation by ``rules`` (``package``: crate, OTP application)."""
    in_app, instrumentation = rules.classify(filename, module, function, language, package)
    return Frame(filename, function, lineno, colno, module=module, in_app=in_app, source_line=source_line,
                 instrumentation=instrumentation)


def cap_frames(frames: list[Frame]) -> tuple[Frame, ...]:
    """At most ``MAX_FRAMES`` frames: the outermost and innermost halves of a deeper trace."""
    if len(frames) <= MAX_FRAMES:
        return tuple(frames)
    half = MAX_FRAMES // 2
    return tuple(frames[:half] + frames[-half:])


def split_type_message(line: str, fallback_type: str) -> tuple[str, str]:
    """``"Type: message"`` → (type, message); a line that does not start with a type is all message."""
    match = _TYPE_LINE.match(line.strip())
    if match and ("." in match.group("type") or match.group("type")[:1].isupper()):
        return match.group("type"), (match.group("msg") or "").strip()
    return fallback_type, line.strip()


def split_location(loc: str) -> tuple[str, int | None, int | None]:
    """``"file:line:col"`` (line and column optional; V8's ``eval at f (file:1:2)`` unwrapped)."""
    loc = loc.strip()
    if loc.startswith("eval at "):
        inner = re.search(r"\(([^()]+)\)", loc)
        loc = inner.group(1) if inner else loc
    match = _LOCATION.match(loc)
    if not match:
        return loc, None, None
    line, col = match.group("line"), match.group("col")
    return match.group("file"), int(line) if line else None, int(col) if col else None
