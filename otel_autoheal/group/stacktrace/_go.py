"""Go: panics, ``runtime.Stack``/``debug.Stack`` and error libraries' ``%+v`` stacks."""

from __future__ import annotations

import re

from otel_autoheal.group.inapp import InAppRules, go_package
from otel_autoheal.group.stacktrace._common import cap_frames, make_frame
from otel_autoheal.model import Frame, ParsedException

__all__ = ["parse_go"]

_GO_NAME = re.compile(r"^[\w./*()\-\[\]{},~]+$")
_GO_FILE = re.compile(r"^\t(?P<file>.+?):(?P<line>\d+)(?: \+0x[0-9a-f]+)?$")


def parse_go(text: str, rules: InAppRules, fallback_type: str) -> list[ParsedException]:
    """One exception (``panic``, ``runtime.Error`` or ``fatal error``) with the first goroutine's frames."""
    lines = text.splitlines()
    message = ""
    exc_type = "panic"
    for line in lines:
        if line.startswith("panic: "):
            # A panic re-raised after recover() is marked "[recovered]" (Go 1.23+: "[recovered, repanicked]").
            message = re.sub(r" \[recovered(?:, repanicked)?\]$", "", line[len("panic: "):].strip())
            if message.startswith("runtime error: "):
                exc_type = "runtime.Error"
            break
        if line.startswith("fatal error: "):
            exc_type, message = "fatal error", line[len("fatal error: "):].strip()
            break
    frames: list[Frame] = []
    # runtime.Stack/debug.Stack and panics start with a goroutine header; "%+v" stacks of
    # error-wrapping libraries have none, so then every func/file pair counts.
    in_first_goroutine = not any(line.startswith("goroutine ") for line in lines)
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("goroutine "):
            if in_first_goroutine:
                break  # Only the panicking goroutine matters.
            in_first_goroutine = True
        elif in_first_goroutine and i + 1 < len(lines):
            func = _go_function(line.strip())
            file_match = _GO_FILE.match(lines[i + 1])
            if func and file_match:
                frames.append(make_frame(rules, "go", file_match.group("file"), func, int(file_match.group("line")),
                                         None, go_package(func)))
                i += 2
                continue
        i += 1
    # A recovered and re-raised panic shows the deferred handler between two panic() calls: the
    # bug is where the first one happened, so the frames before it are the handler's.
    panics = [index for index, frame in enumerate(frames) if frame.function in ("panic", "runtime.gopanic")]
    if len(panics) > 1:
        frames = frames[panics[-1]:]
    frames.reverse()  # Go prints the innermost frame first.
    return [ParsedException(exc_type, message, cap_frames(frames), "go")]


def _go_function(line: str) -> str | None:
    """``created by pkg.(*T).M in goroutine 7`` / ``pkg.f(0x1, {0x2})`` → ``pkg.(*T).M`` / ``pkg.f``; None for other lines.

    The arguments are the last parenthesised group, so they are cut at the first ``(`` after the
    previous ``)``: a single pass, however many parentheses a hostile line holds.
    """
    line = line.removeprefix("created by ")
    marker = line.rfind(" in goroutine ")
    if marker > 0 and line[marker + len(" in goroutine "):].isdigit():
        line = line[:marker]
    if line.endswith(")"):
        start = line.find("(", line.rfind(")", 0, len(line) - 1) + 1)
        if start > 0:
            line = line[:start]
    return line if _GO_NAME.match(line) else None
