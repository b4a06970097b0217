""".NET stacks, with inner exceptions (`` ---> `` in the header, ``--- End of inner exception stack trace ---``)."""

from __future__ import annotations

import re

from otel_autoheal.group.inapp import InAppRules
from otel_autoheal.group.stacktrace._common import cap_frames, split_type_message
from otel_autoheal.model import Frame, ParsedException

__all__ = ["parse_dotnet"]

_DOTNET_FRAME = re.compile(r"^\s*at (?P<func>[^(]+?)\((?P<args>[^)]*)\)(?: in (?P<file>.+?):line (?P<line>\d+))?\s*$")


def parse_dotnet(text: str, rules: InAppRules, fallback_type: str) -> list[ParsedException]:
    """The reported exception first, then each inner exception."""
    lines = text.splitlines()
    header = lines[0].strip() if lines else ""
    names = [part.strip() for part in header.split(" ---> ")]
    for line in lines[1:]:
        if line.strip().startswith("---> "):
            names.append(line.strip()[5:])
    chain_heads = [split_type_message(name, "Exception") for name in names if name]
    blocks: list[list[Frame]] = [[]]
    for line in lines[1:]:
        if "--- End of inner exception stack trace ---" in line:
            blocks.append([])
            continue
        match = _DOTNET_FRAME.match(line)
        if not match:
            continue
        qualified = match.group("func").strip()
        module, _, function = qualified.rpartition(".")
        filename = match.group("file") or module
        frames = blocks[-1]
        in_app, instrumentation = rules.classify(filename, qualified, function, "dotnet")
        frames.append(Frame(filename, function or qualified, int(match.group("line")) if match.group("line") else None,
                            None, module=module or None, in_app=in_app, instrumentation=instrumentation))
    # Frames before an "end of inner exception" marker belong to the innermost exception.
    blocks.reverse()
    chain = []
    for index, (exc_type, message) in enumerate(chain_heads):
        frames = list(reversed(blocks[index])) if index < len(blocks) else []
        chain.append(ParsedException(exc_type, message, cap_frames(frames), "dotnet"))
    return chain
