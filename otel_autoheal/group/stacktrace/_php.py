"""PHP's native ``getTraceAsString()`` stacks (the OpenTelemetry SDK's Java-style ones are in ``_java``)."""

from __future__ import annotations

import re

from otel_autoheal.group.inapp import InAppRules
from otel_autoheal.group.stacktrace._common import cap_frames, make_frame
from otel_autoheal.model import Frame, ParsedException

__all__ = ["parse_php"]

_PHP_FRAME = re.compile(r"^#\d+ (?P<file>[^(]+)\((?P<line>\d+)\): (?P<func>[^(]+)\(")
_PHP_HEADER = re.compile(r"^(?:PHP )?(?:Fatal error:\s+Uncaught )?(?P<type>[\w\\]+): (?P<msg>.*?)(?: in (?P<file>\S+):(?P<line>\d+))?$")


def parse_php(text: str, rules: InAppRules, fallback_type: str) -> list[ParsedException]:
    """``getTraceAsString()``: each ``#n file(line): f()`` is a call *site* and the function it calls.

    The code at ``file(line)`` runs inside the function called by the next line (``{main}`` for
    the last); the header's ``in file:line`` is where it was thrown, inside the function of ``#0``.
    """
    calls: list[tuple[str, int, str]] = []
    exc_type, message = "Exception", ""
    thrown: tuple[str, int] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        match = _PHP_FRAME.match(stripped)
        if match:
            calls.append((match.group("file").strip(), int(match.group("line")), match.group("func").strip()))
            continue
        header = _PHP_HEADER.match(stripped)
        if header and not calls and exc_type == "Exception" and not message:
            exc_type, message = header.group("type"), header.group("msg")
            if header.group("file"):
                thrown = (header.group("file"), int(header.group("line")))
    frames: list[Frame] = []
    if thrown is not None:
        frames.append(make_frame(rules, "php", thrown[0], calls[0][2] if calls else "{main}", thrown[1]))
    for index, (filename, lineno, _called) in enumerate(calls):
        running = calls[index + 1][2] if index + 1 < len(calls) else "{main}"
        frames.append(make_frame(rules, "php", filename, running, lineno))
    frames.reverse()  # PHP prints the innermost frame first.
    return [ParsedException(exc_type, message, cap_frames(frames), "php")]
