"""Stack trace text → parsed exceptions and frames: one private module per format behind a table.

Formats: Python (with chained causes and exception groups), JavaScript (V8, Firefox/Safari),
Java/Kotlin/Scala (with Caused by, Suppressed), Go panics, .NET (with inner exceptions), Ruby, PHP
(native, and the OpenTelemetry SDK's Java-style stacks), Rust (panics, backtraces, anyhow/eyre
reports), Elixir/Erlang, Swift/Objective-C (``Thread.callStackSymbols``) and C++ (``boost::stacktrace``,
``std::stacktrace``).

Conventions of the result: ``parse_stacktrace`` returns the exception chain with the reported
(outermost) exception first and the root cause last; each exception's frames are ordered
outermost call first, innermost (where it was raised) last, whatever order the language prints.
A new format is a module with one ``parse_<lang>(text, rules, fallback_type)`` function, an entry
in ``_PARSERS`` and a rule in ``_detect.detect_language``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from otel_autoheal.group.inapp import InAppRules
from otel_autoheal.group.stacktrace._common import MAX_FRAMES
from otel_autoheal.group.stacktrace._cpp import parse_cpp
from otel_autoheal.group.stacktrace._detect import detect_language
from otel_autoheal.group.stacktrace._dotnet import parse_dotnet
from otel_autoheal.group.stacktrace._elixir import parse_elixir, parse_erlang_term
from otel_autoheal.group.stacktrace._go import parse_go
from otel_autoheal.group.stacktrace._java import parse_java, parse_php_otel
from otel_autoheal.group.stacktrace._javascript import parse_javascript
from otel_autoheal.group.stacktrace._php import parse_php
from otel_autoheal.group.stacktrace._python import parse_python
from otel_autoheal.group.stacktrace._ruby import parse_ruby
from otel_autoheal.group.stacktrace._rust import parse_rust
from otel_autoheal.group.stacktrace._swift import parse_swift, swift_readable_name
from otel_autoheal.model import ParsedException

__all__ = ["MAX_FRAMES", "InAppRules", "detect_language", "parse_stacktrace", "swift_readable_name"]

#: ``parse(text, rules, fallback_type)`` → chain, and the language the frames are reported as.
_Parser = Callable[[str, InAppRules, str], list[ParsedException]]
_PARSERS: dict[str, tuple[_Parser, str]] = {
    "python": (parse_python, "python"),
    "javascript": (parse_javascript, "javascript"),
    "java": (parse_java, "java"),
    "php-otel": (parse_php_otel, "php"),
    "go": (parse_go, "go"),
    "dotnet": (parse_dotnet, "dotnet"),
    "ruby": (parse_ruby, "ruby"),
    "php": (parse_php, "php"),
    "rust": (parse_rust, "rust"),
    "elixir": (parse_elixir, "elixir"),
    "erlang-term": (parse_erlang_term, "elixir"),
    "swift": (parse_swift, "swift"),
    "cpp": (parse_cpp, "cpp"),
}

_DEFAULT_RULES = InAppRules()
log = logging.getLogger("otel_autoheal.group.stacktrace")


def parse_stacktrace(
    text: str, exc_type: str = "", message: str = "", rules: InAppRules | None = None
) -> list[ParsedException]:
    """Parse ``text`` into an exception chain (reported exception first, root cause last).

    ``exc_type`` and ``message`` (from the telemetry attributes) override what the text says for
    the reported exception. Text in no known format gives one exception without frames.
    """
    rules = rules or _DEFAULT_RULES
    language = detect_language(text) if text else "unknown"
    chain: list[ParsedException] = []
    entry = _PARSERS.get(language)
    if entry is not None:
        parse, language = entry
        # JavaScript headers may lack a type ("Uncaught boom"): the telemetry's type, else Error.
        try:
            chain = parse(text, rules, exc_type or "Error")
        except Exception:  # a parser bug must cost the frames of one text, never the error itself
            log.warning("could not parse a %s stack (%d chars); keeping it without frames", language, len(text),
                        exc_info=True)
            chain = []
    if not chain:
        chain = [ParsedException(exc_type, message, (), language)]
    head = chain[0]
    chain[0] = ParsedException(exc_type or head.type, message or head.message, head.frames, head.language)
    return chain
