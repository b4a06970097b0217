"""Rust: panics, ``std::backtrace::Backtrace`` and ``anyhow``/``eyre``/``color-eyre`` error reports.

A report is a message, then sections: ``Caused by:`` (one cause, or numbered ``0:``, ``1:``…),
``Location:`` (eyre), ``Stack backtrace:``/``stack backtrace:`` (numbered symbols, each optionally
followed by an indented ``at file:line:col``) and color-eyre's ``━━ BACKTRACE ━━`` / ``━━ SPANTRACE ━━``
banners. ``{:?}`` of a bare ``Backtrace`` prints ``Backtrace [{ fn: "…", file: "…", line: N }, …]``.
"""

from __future__ import annotations

import re

from otel_autoheal.group.inapp import InAppRules
from otel_autoheal.group.stacktrace._common import cap_frames, make_frame, split_location
from otel_autoheal.model import Frame, ParsedException

__all__ = ["parse_rust", "rust_crate"]

# "thread 'main' panicked at src/main.rs:4:5:" (1.73+, message on the next lines) and
# "thread 'main' panicked at 'boom', src/main.rs:4:5" (before).
_PANIC_NEW = re.compile(r"^thread '[^']*' panicked at (?P<loc>\S+:\d+:\d+):$")
_PANIC_OLD = re.compile(r"^thread '[^']*' panicked at '(?P<msg>.*)', (?P<loc>\S+:\d+:\d+)$")
# "  12: app::cart::total::h0123456789abcdef" and RUST_BACKTRACE=full's "  12:   0x55d5c2b1e4a3 - app::…"
_SYMBOL = re.compile(r"^\s*(?P<index>\d+):\s+(?:0x[0-9a-fA-F]+ - )?(?P<func>\S.*?)\s*$")
_AT = re.compile(r"^\s+at (?P<loc>\S.*?)\s*$")
_DEBUG_FRAME = re.compile(r'\{ fn: "(?P<func>[^"]*)"(?:, file: "(?P<file>[^"]*)", line: (?P<line>\d+))? \}')
_HASH = re.compile(r"::h[0-9a-f]{16}$|\[[0-9a-f]{8,16}\]")
_NUMBERED = re.compile(r"^\s*\d+: (?P<msg>.*)$")
_SECTION_BACKTRACE = ("stack backtrace:", "Stack backtrace:", "Backtrace:")
_NOTES = ("note: ", "Run with ", "Set RUST_BACKTRACE", "Error: ")


def rust_crate(function: str) -> str:
    """``app::cart::total`` → ``app``; ``<app::Cart as core::fmt::Display>::fmt`` → ``app``;
    ``<T as core::convert::Into<U>>::into`` (a generic self type) → ``core``; ``main`` → ``""``."""
    path = function
    if path.startswith("<"):
        self_type, _, trait = path[1:].partition(" as ")
        self_type = self_type.lstrip("&*").removeprefix("mut ").removeprefix("dyn ").removeprefix("impl ")
        path = self_type if "::" in self_type.split("<", 1)[0] else trait
    head = path.split("<", 1)[0]
    return head.split("::", 1)[0].strip() if "::" in head else ""


def _frame(rules: InAppRules, symbol: str, location: str | None) -> Frame:
    function = _HASH.sub("", symbol.strip())
    filename, lineno, colno = split_location(location) if location else ("", None, None)
    crate = rust_crate(function)
    return make_frame(rules, "rust", filename, function, lineno, colno, crate or None, package=crate)


def parse_rust(text: str, rules: InAppRules, fallback_type: str) -> list[ParsedException]:
    """The reported error first, then each ``Caused by`` entry; all frames belong to the reported error."""
    lines = text.splitlines()
    debug_frames = [m for line in lines if "{ fn: " in line for m in _DEBUG_FRAME.finditer(line)]
    head_type = fallback_type
    message_lines: list[str] = []
    causes: list[str] = []
    panic_location: str | None = None
    frames: list[Frame] = []
    section = "message"
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        i += 1
        panic = _PANIC_NEW.match(stripped) or _PANIC_OLD.match(stripped)
        if panic and section == "message" and not message_lines:
            head_type, panic_location = "panic", panic.group("loc")
            if "msg" in panic.groupdict():
                message_lines.append(panic.group("msg"))
            continue
        if stripped in _SECTION_BACKTRACE or ("BACKTRACE" in stripped and stripped.startswith("━")):
            section = "backtrace"
            continue
        if stripped == "Caused by:":
            section = "causes"
            continue
        if stripped == "Location:":
            section = "location"
            continue
        if "SPANTRACE" in stripped and stripped.startswith("━"):
            section = "spantrace"  # tracing spans, not calls
            continue
        if stripped.startswith(_NOTES) and section != "causes":
            if stripped.startswith("Error: ") and section == "message" and not message_lines:
                message_lines.append(stripped[len("Error: "):])
            continue
        if "{ fn: " in stripped:
            continue  # a Debug-printed Backtrace, read above
        symbol = _SYMBOL.match(line)
        at_next = i < len(lines) and _AT.match(lines[i])
        if symbol and section != "spantrace" and (section == "backtrace" or at_next):
            location = None
            if at_next:
                location = at_next.group("loc")
                i += 1
            if not symbol.group("func").startswith("⋮"):
                frames.append(_frame(rules, symbol.group("func"), location))
            section = "backtrace"
            continue
        if not stripped or section in ("location", "spantrace", "backtrace"):
            continue
        numbered = _NUMBERED.match(stripped)
        if section == "causes":
            causes.append(numbered.group("msg") if numbered else stripped)
        elif numbered and not message_lines:
            # color-eyre lists the reported error and its causes as "0: …", "1: …" without a heading.
            causes.append(numbered.group("msg"))
        elif section == "message":
            message_lines.append(stripped)
    if not message_lines and causes and not panic_location:
        message_lines.append(causes.pop(0))
    for match in debug_frames:
        frames.append(_frame(rules, match.group("func"),
                             f"{match.group('file')}:{match.group('line')}" if match.group("file") else None))
    frames.reverse()  # Rust prints the innermost frame first.
    if not frames and panic_location:
        # Without RUST_BACKTRACE a panic names only where it happened: that place is its one frame.
        frames.append(_frame(rules, "{panic}", panic_location))
    if not message_lines and not frames and not causes:
        return []
    chain = [ParsedException(head_type, "\n".join(message_lines).strip(), cap_frames(frames), "rust")]
    chain.extend(ParsedException("Error", cause.strip(), (), "rust") for cause in causes)
    return chain
