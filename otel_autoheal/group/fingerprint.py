"""Fingerprints: which errors are "the same" and belong to one issue.

The key is ``service.name`` + for each exception of the chain its type and its in-app frames
(module or project-relative file + function; never line/column numbers, addresses, release
folders or versions). Library frames count only when a chain has no in-app frame at all;
instrumentation frames (SDKs, agents, patch wrappers) never count. Without any frame the key
falls back to the type + the message template. Go stacks show where an error was *recorded*,
not where it was created, so Go keys always add the message template; Go error types
(``*fmt.wrapError`` on spans, the unwrapped ``*strconv.NumError`` on logs) are not part of any key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from otel_autoheal.group.paths import PATH_COMPONENTS_KEPT, project_relative
from otel_autoheal.group.template import message_template
from otel_autoheal.model import Frame, ParsedException

__all__ = [
    "PATH_COMPONENTS_KEPT",
    "Fingerprint",
    "compute_fingerprint",
    "frame_function",
    "is_generic_type",
    "is_wrapper_type",
    "normalize_filename",
    "short_type",
]

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
#: Compiler-generated names whose numbers change when unrelated code moves: Java/Kotlin lambdas
#: (``lambda$handle$0``, ``$1``), Go closures (``func2``, ``gowrap1``), C# lambdas, async state
#: machines, local functions and display classes (``<Main>b__0_1``, ``<TotalAsync>d__3``,
#: ``<Main>g__Load|3_0``, ``<>c__DisplayClass5_0``), Erlang funs (``-run/1-fun-0-``).
_SYNTHETIC = (
    (re.compile(r"\$\d+"), "$"),
    (re.compile(r"\.(func|gowrap|deferwrap)\d+(?:\.\d+)*"), r".\1"),
    (re.compile(r"\b([bd]__|DisplayClass)\d+(?:_\d+)?"), r"\1"),
    # Erlang funs numbered by the compiler: "-run/1-fun-0-"; C# local functions "<Main>g__Load|3_0".
    (re.compile(r"-fun-\d+-"), "-fun-"),
    (re.compile(r"(g__\w+)\|\d+_\d+"), r"\1"),
)
#: Go's error types that say nothing about the error: ``errors.New``, ``fmt.Errorf`` (with or
#: without ``%w``) and ``errors.Join`` all produce one of these.
_GO_GENERIC_TYPES = frozenset({
    "*errors.errorString", "*fmt.wrapError", "*fmt.wrapErrors", "*errors.joinError", "*fmt.fmtError",
    "errors.errorString", "fmt.wrapError", "fmt.wrapErrors", "errors.joinError",
})


def short_type(exc_type: str) -> str:
    """``json.decoder.JSONDecodeError`` → ``JSONDecodeError``: SDKs disagree on qualification."""
    base = exc_type.split("[", 1)[0]
    return base.rsplit(".", 1)[-1] or exc_type


def is_wrapper_type(exc_type: str) -> bool:
    """A missing type or one of Go's wrappers (``*fmt.wrapError``…), which name no error at all."""
    return not exc_type or exc_type in _GO_GENERIC_TYPES


def is_generic_type(exc_type: str) -> bool:
    """True for types that cannot tell two errors apart: a missing type and Go's error types.

    Go reports the *outer* type on spans (``*fmt.wrapError`` for any ``fmt.Errorf("…: %w")``)
    while its logs SDK unwraps to the inner one (``*strconv.NumError``), so one error arrives
    under two types; its message says more and is what Go errors are grouped by. Go types are
    pointers (``*pkg.T``) or carry an import path (``example.com/x/pkg.T``).
    """
    return not exc_type or exc_type in _GO_GENERIC_TYPES or exc_type.startswith("*") or "/" in exc_type


def normalize_filename(filename: str) -> str:
    """The project-relative part of a frame's path (see ``otel_autoheal.group.paths``)."""
    return project_relative(filename)


def frame_function(function: str) -> str:
    """``function`` without addresses and compiler-generated numbering."""
    function = _ADDRESS.sub("", function)
    for pattern, replacement in _SYNTHETIC:
        function = pattern.sub(replacement, function)
    return function.strip()


def _frame_key(frame: Frame) -> str:
    function = frame_function(frame.function)
    if frame.module:
        module = frame_function(frame.module)
        if function.startswith((module + ".", module + "::")):  # Go, Rust: the function names its package
            return function
        return f"{module}:{function}"
    return f"{normalize_filename(frame.filename)}:{function}"


def _dedupe_recursion(keys: list[str]) -> list[str]:
    """Collapse runs of the same frame (and short repeating cycles) so recursion depth doesn't split groups."""
    out: list[str] = []
    for key in keys:
        if out and out[-1] == key:
            continue
        # A cycle of length 2..4 repeating: skip when the last cycle equals the one before it.
        out.append(key)
        for size in (2, 3, 4):
            if len(out) >= 2 * size and out[-size:] == out[-2 * size : -size]:
                del out[-size:]
                break
    return out


@dataclass(frozen=True)
class Fingerprint:
    """A group key and the human-readable parts it was made of (shown in the issue)."""

    hex: str
    fields: list[str]


def _key_frames(chain: Sequence[ParsedException]) -> tuple[list[list[Frame]], bool]:
    """Per exception, the frames that make the key, and whether they are in-app frames."""
    has_in_app = any(f.in_app for exc in chain for f in exc.frames)
    return [
        [f for f in exc.frames if (f.in_app if has_in_app else not f.instrumentation)] for exc in chain
    ], has_in_app


def compute_fingerprint(service_name: str, chain: Sequence[ParsedException]) -> Fingerprint:
    """Compute the group key of an exception chain (reported exception first)."""
    per_exception, has_in_app = _key_frames(chain)
    any_frames = any(per_exception)
    fields = [f"service.name={service_name}"]
    parts = [service_name]
    for exc, frames in zip(chain, per_exception, strict=True):
        keys = _dedupe_recursion([_frame_key(f) for f in frames])
        # Rust and C++ paths use "::" ("anyhow::Error", "std::out_of_range"); SDKs send them qualified or not.
        bare_type = exc.type.rsplit("::", 1)[-1] if exc.language in ("rust", "cpp") else exc.type
        type_ = "error" if is_generic_type(exc.type) else short_type(bare_type)
        parts.append(type_)
        fields.append(f"exception.type={type_}")
        if keys:
            parts.extend(keys)
            label = "in-app frames" if has_in_app else "frames"
            fields.append(f"{label}={' > '.join(keys[-8:])}{f' (+{len(keys) - 8} more)' if len(keys) > 8 else ''}")
        if not any_frames or exc.language == "go":
            template = message_template(exc.message)
            parts.append(template)
            fields.append(f"message template={template}")
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "replace")).hexdigest()[:32]
    return Fingerprint(digest, fields)
