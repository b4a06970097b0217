"""Python tracebacks, with chained causes (``raise … from``, implicit context) and exception groups."""

from __future__ import annotations

import re

from otel_autoheal.group.inapp import InAppRules
from otel_autoheal.group.stacktrace._common import cap_frames, make_frame, split_type_message
from otel_autoheal.model import Frame, ParsedException

__all__ = ["parse_python"]

_PY_FRAME = re.compile(r'^\s*File "(?P<file>[^"]*)", line (?P<line>\d+)(?:, in (?P<func>.+))?\s*$')
_PY_CHAIN = re.compile(
    r"^\s*(?:\|\s*)?(The above exception was the direct cause of the following exception:"
    r"|During handling of the above exception, another exception occurred:)\s*$"
)


def parse_python(text: str, rules: InAppRules, fallback_type: str) -> list[ParsedException]:
    """One exception per chained block, the reported (last printed) first."""
    lines = [re.sub(r"^\s*\|\s?", "", ln) if ln.lstrip().startswith("|") else ln for ln in text.splitlines()]
    blocks: list[list[str]] = [[]]
    for line in lines:
        if _PY_CHAIN.match(line):
            blocks.append([])
        else:
            blocks[-1].append(line)
    chain: list[ParsedException] = []
    for block in blocks:
        frames: list[Frame] = []
        exc_line = ""
        message_tail: list[str] = []
        seen_frame = False
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
                if re.match(r"^\s*\+[-+]", line):
                    break  # the sub-exceptions of an ExceptionGroup follow
                message_tail.append(line.strip())
            i += 1
        if not exc_line and not frames:
            continue
        exc_type, message = split_type_message(exc_line, "Exception") if exc_line else ("Exception", "")
        if message_tail and not message_tail[0].startswith("[Previous line repeated"):
            message = "\n".join([message, *message_tail]).strip()
        chain.append(ParsedException(exc_type, message, cap_frames(frames), "python"))
    chain.reverse()  # Python prints the cause first; we want the reported exception first.
    return chain


def _python_module(filename: str) -> str | None:
    for marker in ("site-packages/", "dist-packages/"):
        if marker in filename:
            rel = filename.rsplit(marker, 1)[1]
            return rel.removesuffix(".py").replace("/__init__", "").replace("/", ".")
    return None
