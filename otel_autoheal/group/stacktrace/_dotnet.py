""".NET stacks, with inner exceptions (`` ---> `` in the header, ``--- End of inner exception stack trace ---``).

Compiler-generated frames are named after the method the developer wrote, so that .NET Framework's
``Shop.Cart.<TotalAsync>d__12.MoveNext()`` and .NET Core's resolved ``Shop.Cart.TotalAsync()``
give one key: async state machines (``<M>d__N.MoveNext``), lambdas and display classes
(``<>c.<M>b__0_1``, ``<>c__DisplayClass5_0``), local functions (``<M>g__Local|3_0``) and top-level
statements (``<Main>$``).
"""

from __future__ import annotations

import re

from otel_autoheal.group.inapp import InAppRules
from otel_autoheal.group.stacktrace._common import cap_frames, split_type_message
from otel_autoheal.model import Frame, ParsedException

__all__ = ["parse_dotnet", "source_method"]

_LOCAL_FUNCTION = re.compile(r"g__(\w+)\|")
_GENERATED = re.compile(r"^<+(\w+)>")
_CONSTRUCTOR = re.compile(r"^(?P<cls>.+)\.(?P<ctor>\.c?ctor)$")
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
        module, function = source_method(match.group("func").strip())
        qualified = f"{module}.{function}" if module else function
        filename = match.group("file") or module
        frames = blocks[-1]
        in_app, instrumentation = rules.classify(filename, qualified, function, "dotnet")
        # A method without a type (``lambda_method15``) is compiled at run time by expression trees.
        in_app = in_app and bool(module)
        frames.append(Frame(filename, function or qualified, int(match.group("line")) if match.group("line") else None,
                            None, module=module or None, in_app=in_app, instrumentation=instrumentation))
    # Frames before an "end of inner exception" marker belong to the innermost exception.
    blocks.reverse()
    chain = []
    for index, (exc_type, message) in enumerate(chain_heads):
        frames = list(reversed(blocks[index])) if index < len(blocks) else []
        chain.append(ParsedException(exc_type, message, cap_frames(frames), "dotnet"))
    return chain


def _written_name(generated: str) -> str:
    """``<<Main>$>g__Load|0_1`` → ``Load``; ``<QuoteAsync>d__4`` → ``QuoteAsync``; others unchanged."""
    local = _LOCAL_FUNCTION.search(generated)
    if local:
        return local.group(1)
    outer = _GENERATED.match(generated)
    return outer.group(1) if outer else generated


def source_method(qualified: str) -> tuple[str, str]:
    """``Ns.Cart.<TotalAsync>d__12.MoveNext`` → (``Ns.Cart``, ``TotalAsync``): the type and the method as written."""
    constructor = _CONSTRUCTOR.match(qualified)
    if constructor:
        return constructor.group("cls"), constructor.group("ctor")
    module, _, function = qualified.rpartition(".")
    parts = module.split(".") if module else []
    while parts and parts[-1].startswith("<"):
        written = _written_name(parts.pop())
        if function == "MoveNext" and not written.startswith("<"):
            function = written  # the async state machine's body is the method itself
    if function.startswith("<"):
        function = _written_name(function)
    return ".".join(parts), function
