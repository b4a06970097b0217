"""The culprit: the innermost application frame of the root cause, and how a person names it."""

from __future__ import annotations

import re
from collections.abc import Sequence

from otel_autoheal.group.fingerprint import frame_function
from otel_autoheal.group.stacktrace import swift_readable_name
from otel_autoheal.model import Frame, ParsedException

__all__ = ["culprit_frame", "frame_label"]

#: Languages whose frames carry a class (``module``) that a person names together with the method.
_CLASS_LANGUAGES = frozenset({"java", "dotnet", "php", "elixir"})


#: Functions without a name of their own: comprehensions, lambdas, anonymous and module-level code.
_ANONYMOUS = re.compile(r"^(?:<(?:genexpr|listcomp|dictcomp|setcomp|lambda|anonymous|module)>|global code|)$")
#: Ruby's block/rescue/ensure prefixes ("block (2 levels) in Cart#total").
_RUBY_BLOCK = re.compile(r"^(?:(?:block|rescue|ensure)(?: \(\d+ levels\))? in )+")
#: The method a C# compiler-generated name stands for: ``<QuoteAsync>d__4``, ``<<Main>$>b__0_1``.
_DOTNET_GENERATED = re.compile(r"^<+(\w+)>")


def culprit_frame(chain: Sequence[ParsedException]) -> tuple[Frame, str] | None:
    """The innermost named in-app frame, looking at the root cause first; with its language.

    Comprehensions, lambdas and anonymous functions give way to the named function around them.
    """
    for parsed in reversed(chain):
        in_app = [f for f in parsed.frames if f.in_app and not f.instrumentation]
        for frame in reversed(in_app):
            if not _ANONYMOUS.match(frame.function.strip()):
                return frame, parsed.language
        if in_app:
            return in_app[-1], parsed.language
    return None


def _dotnet_method(module: str, function: str) -> tuple[str, str]:
    """``PriceService.<QuoteAsync>d__4`` + ``MoveNext`` → (``PriceService``, ``QuoteAsync``)."""
    parts = module.split(".")
    while parts and (parts[-1].startswith("<") or parts[-1] == "<>c"):
        generated = _DOTNET_GENERATED.match(parts.pop())
        if (generated and function in ("MoveNext", "Invoke")) or function.startswith("<"):
            function = generated.group(1) if generated else function
    generated = _DOTNET_GENERATED.match(function)
    if generated:
        function = generated.group(1)
    return ".".join(parts), function


_JVM_LAMBDA = re.compile(r"^lambda\$(\w+?)\$\d+$")
#: Methods through which Kotlin/Java call a lambda or coroutine body (``Cart$total$2.invokeSuspend``).
_JVM_BODY_METHODS = frozenset({"invokeSuspend", "invoke", "run", "call", "apply", "accept", "get"})


def _jvm_label(cls: str, method: str) -> str:
    """``Cart$total$2`` + ``invokeSuspend`` → ``Cart.total``; ``Main`` + ``lambda$main$0`` → ``Main.main``."""
    lam = _JVM_LAMBDA.match(method)
    if lam:
        method = lam.group(1)
    parts = [p for p in cls.rsplit(".", 1)[-1].split("$") if p and not p.isdigit()]
    if len(parts) > 1 and parts[-1][:1].islower() and method in _JVM_BODY_METHODS:
        method = parts.pop()  # a coroutine/lambda class named after its enclosing function
    return ".".join([*parts, method]) if parts else method


_RUST_GENERICS = re.compile(r"<[^<>]*>")


def _rust_label(frame: Frame) -> str:
    """``app::cart::Cart::total::{{closure}}`` → ``Cart::total``; ``<app::Cart as Display>::fmt`` → ``Cart::fmt``."""
    function = frame.function
    if function == "{panic}":
        return f"panic in {frame.filename.replace(chr(92), '/').rsplit('/', 1)[-1]}"
    while function.endswith("::{{closure}}"):
        function = function[: -len("::{{closure}}")]
    if function.startswith("<") and " as " in function:
        self_type = function[1:].split(" as ", 1)[0]
        function = f"{self_type}::{function.rsplit('::', 1)[-1]}"
    for _ in range(4):  # nested generic arguments, innermost first
        function = _RUST_GENERICS.sub("", function)
    return "::".join(function.split("::")[-2:])


def frame_label(frame: Frame, language: str) -> str:
    """``CartService.total`` for class-based languages, ``pricing.(*Handler).Quote`` for Go, else the function."""
    function = _RUBY_BLOCK.sub("", frame.function) if language == "ruby" else frame.function
    if language == "go":
        return function.rsplit("/", 1)[-1]
    if language == "rust":
        return _rust_label(frame)
    if language == "swift":
        return swift_readable_name(function)
    if language == "cpp":  # "shop::Cart::total() const" → "Cart::total"
        return "::".join(function.split("(", 1)[0].split("::")[-2:])
    if frame.module and language == "java":
        return _jvm_label(frame.module, function)
    if frame.module and language in _CLASS_LANGUAGES:
        module = frame.module
        if language == "dotnet":
            module, function = _dotnet_method(module, function)
        simple = frame_function(module).replace("\\", ".").rsplit(".", 1)[-1]
        return f"{simple}.{function}" if simple else function
    return function
