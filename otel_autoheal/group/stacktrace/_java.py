"""JVM stacks (Java, Kotlin, Scala, …) with ``Caused by:`` chains; ``Suppressed:`` blocks are skipped.

PHP's OpenTelemetry SDK prints the same shape (``at App.Orders.load(Orders.php:12)``), parsed
here with ``language="php"``.
"""

from __future__ import annotations

import re

from otel_autoheal.group.inapp import InAppRules
from otel_autoheal.group.stacktrace._common import cap_frames, make_frame, split_location
from otel_autoheal.model import Frame, ParsedException

__all__ = ["parse_java", "parse_php_otel"]

# "at app//com.acme.Main.main(Main.java:5)", "at java.base@17.0.2/java.lang.Thread.run(…)"; PHP's
# OpenTelemetry SDK writes the same shape ("at App.Orders.load(Orders.php:12)", "at {main}(…)").
_JAVA_FRAME = re.compile(
    r"^\s*at (?:[\w.\-@]*/)*(?:(?P<cls>[\w$.\\]+)\.)?(?P<method>[\w$<>{}\-]+)\((?P<loc>[^)]*)\)\s*(?:~?\[[^\]]*\])?$"
)
# A type is a dotted name whose last part has a capital ("java.io.IOException", "com.acme.Oops");
# the capital is checked after matching so the pattern cannot backtrack quadratically.
_JAVA_HEADER = re.compile(r"^(?:Caused by: |Suppressed: )?(?P<type>[\w$.]+)(?:: (?P<msg>.*))?$")


def parse_java(text: str, rules: InAppRules, fallback_type: str, language: str = "java") -> list[ParsedException]:
    """The reported exception first, then each ``Caused by:``."""
    chain: list[ParsedException] = []
    current: tuple[str, str] | None = None
    frames: list[Frame] = []

    def flush() -> None:
        if current is not None:
            frames.reverse()  # Java prints the innermost frame first.
            chain.append(ParsedException(current[0], current[1], cap_frames(frames), language))

    suppressed_indent: int | None = None
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if suppressed_indent is not None:
            nested_cause = indent == suppressed_indent and line.strip().startswith("Caused by:")
            if line.strip() and (indent > suppressed_indent or nested_cause):
                continue  # a suppressed exception's frames and causes don't belong to the chain
            suppressed_indent = None
        if line.strip().startswith("Suppressed:"):
            suppressed_indent = indent
            continue
        frame = _JAVA_FRAME.match(line)
        if frame:
            cls, method = frame.group("cls"), frame.group("method")
            filename, lineno, _ = split_location(frame.group("loc"))
            frames.append(make_frame(rules, language, filename, method, lineno, None, cls or None))
            continue
        stripped = line.strip()
        if not stripped or re.match(r"^\.\.\. \d+ (more|common frames omitted)", stripped):
            continue
        if current is None or stripped.startswith("Caused by:"):
            header = _JAVA_HEADER.match(stripped)
            if header and re.search("[A-Z]", header.group("type").replace("$", ".").rsplit(".", 1)[-1]):
                flush()
                current, frames = (header.group("type"), (header.group("msg") or "").strip()), []
    flush()
    return chain


def parse_php_otel(text: str, rules: InAppRules, fallback_type: str) -> list[ParsedException]:
    """PHP's OpenTelemetry SDK's Java-style stack, as PHP frames."""
    return parse_java(text, rules, fallback_type, "php")
