"""Python tracebacks, with chained causes (``raise … from``, implicit context) and exception groups."""

from __future__ import annotations

import re

from otel_autoheal.group.inapp import InAppRules
from otel_autoheal.group.stacktrace._common import cap_frames, make_frame, split_type_message
from otel_autoheal.model import Frame, ParsedException

__all__ = ["parse_python"]

_PY_FRAME = re.compile(r'^\s*File "(?P<file>[^"]*)", line (?P<line>\d+)(?:, in (?P<func>.+))?\s*$')
_GROUP_LINE = re.compile(r"^(?P<indent> *)(?P<mark>[|+])(?P<rest>.*)$")
_SEPARATOR = re.compile(r"^[-+]*-+(?: (?:\d+|\.\.\.) -+)?\s*$")
_PY_CHAIN = re.compile(
    r"^\s*(?:\|\s*)?(The above exception was the direct cause of the following exception:"
    r"|During handling of the above exception, another exception occurred:)\s*$"
)


def parse_python(text: str, rules: InAppRules, fallback_type: str) -> list[ParsedException]:
    """One exception per chained block, the reported (last printed) first; then an exception group's
    sub-exceptions (each with its own chain), distinct ones once, in a stable order."""
    top, subs = _split_exception_groups(text)
    chain = _parse_chained(top, rules)
    sub_chains = {tuple(_sub_key(exc) for exc in sub): sub for sub in (_parse_chained(b, rules) for b in subs) if sub}
    for key in sorted(sub_chains):
        chain.extend(sub_chains[key])
    return chain


def _sub_key(exc: ParsedException) -> tuple[str, tuple[str, ...]]:
    # Functions, not paths: one release's folder must not reorder sub-exceptions.
    return exc.type, tuple(f.function for f in exc.frames if f.in_app)


def _split_exception_groups(text: str) -> tuple[list[str], list[list[str]]]:
    """The outermost traceback's lines, and each sub-exception's lines (``|``-prefixed, Python 3.11+).

    A group's sub-exceptions are introduced by ``+-+---- 1 ----`` / ``+---- 2 ----``; their lines
    are prefixed with ``|`` at the column of the separator's last ``+``. Deeper groups nest the same way.
    """
    top: list[str] = []
    subs: list[list[str]] = []
    by_column: dict[int, list[str] | None] = {}  # None: the lines of "... and 3 more exceptions"
    top_column: int | None = None
    for line in text.splitlines():
        match = _GROUP_LINE.match(line)
        if not match:
            top.append(line)
            continue
        column, mark, rest = len(match.group("indent")), match.group("mark"), match.group("rest")
        if mark == "+" and _SEPARATOR.match(rest):
            if re.search(r"\d|\.\.\.", rest):
                child = column + line[column:].rfind("+")
                block: list[str] | None = None if "..." in rest else []
                by_column[child] = block
                if block is not None:
                    subs.append(block)
            continue
        content = rest[1:] if rest.startswith(" ") else rest
        if top_column is None:
            top_column = column
        if column <= top_column:
            top.append(content)
            continue
        if column not in by_column:
            new_block: list[str] = []
            by_column[column] = new_block
            subs.append(new_block)
        target = by_column[column]
        if target is not None:
            target.append(content)
    return top, subs


def _parse_chained(lines: list[str], rules: InAppRules) -> list[ParsedException]:
    blocks: list[list[str]] = [[]]
    for line in lines:
        if _PY_CHAIN.match(line):
            blocks.append([])
        else:
            blocks[-1].append(line)
    chain = [parsed for parsed in (_parse_block(block, rules) for block in blocks) if parsed is not None]
    chain.reverse()  # Python prints the cause first; we want the reported exception first.
    return chain


def _parse_block(block: list[str], rules: InAppRules) -> ParsedException | None:
    frames: list[Frame] = []
    exc_line = ""
    message_tail: list[str] = []
    seen_frame = False
    bare_line = ""  # a sub-exception printed without a traceback: just "ValueError: 1"
    i = 0
    while i < len(block):
        line = block[i]
        match = _PY_FRAME.match(line)
        if match:
            seen_frame = True
            filename = match.group("file")
            source = None
            if i + 1 < len(block) and block[i + 1].startswith("    ") and not _PY_FRAME.match(block[i + 1]):
                source = block[i + 1].strip()
                i += 1
            frames.append(make_frame(rules, "python", filename, (match.group("func") or "<module>").strip(),
                                     int(match.group("line")), None, _python_module(filename), source))
        elif seen_frame and line and not line[0].isspace() and not exc_line:
            exc_line = line
        elif exc_line and line.strip():
            message_tail.append(line.strip())
        elif not seen_frame and not bare_line and line[:1].strip() and not line.rstrip().endswith("(most recent call last):"):
            bare_line = line
        i += 1
    exc_line = exc_line or bare_line
    if not exc_line and not frames:
        return None
    exc_type, message = split_type_message(exc_line, "Exception") if exc_line else ("Exception", "")
    if message_tail and not message_tail[0].startswith("[Previous line repeated"):
        message = "\n".join([message, *message_tail]).strip()
    return ParsedException(exc_type, message, cap_frames(frames), "python")


def _python_module(filename: str) -> str | None:
    for marker in ("site-packages/", "dist-packages/"):
        if marker in filename:
            rel = filename.rsplit(marker, 1)[1]
            return rel.removesuffix(".py").replace("/__init__", "").replace("/", ".")
    return None
