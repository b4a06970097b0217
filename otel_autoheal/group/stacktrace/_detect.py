"""Which runtime printed a stack: the first format whose frame shape appears, most specific first."""

from __future__ import annotations

import re

__all__ = ["detect_language"]


def detect_language(text: str) -> str:
    """Guess which runtime printed ``text`` (a key of the parser table, or ``"unknown"``)."""
    head = text[:20000]
    if "Traceback (most recent call last)" in head or re.search(r'^\s*File "[^"]*", line \d+', head, re.M):
        return "python"
    if re.search(r"^goroutine \d+ \[", head, re.M) or re.search(r"^\t.+\.go:\d+", head, re.M):
        return "go"
    if re.search(r"^\s*at [\w$.{}]+\([^)]*\.php:\d+\)", head, re.M):
        return "php-otel"  # PHP's OpenTelemetry SDK formats stacks like Java
    if re.search(r"^\s*at (?:[\w.\-@]*/)*[\w$.]+\([\w$.]*\.(?:java|kt|scala|groovy|clj):\d+\)", head, re.M) or re.search(
        r"^\s*at (?:[\w.\-@]*/)*[\w$.]+\((?:Native Method|Unknown Source)\)", head, re.M
    ):
        return "java"
    if re.search(r"^\s*at [^(]+\([^)]*\)(?: in .+:line \d+)?\s*$", head, re.M) and (
        ":line " in head or re.search(r"^\s*at [\w.`<>+]+\((?:[\w.`\[\]<>]+ \w+(?:, )?)*\)\s*$", head, re.M)
    ):
        return "dotnet"
    if re.search(r"^\s*(?:from )?[^\s:][^:]*:\d+:in [`'][^'`]+'", head, re.M):
        return "ruby"
    if re.search(r"^#\d+ [^(]+\(\d+\): ", head, re.M):
        return "php"
    if re.search(r"^\s*at .+:\d+:\d+\)?\s*$", head, re.M) or re.search(r"^\s*at .+ \(.+\)\s*$", head, re.M):
        return "javascript"
    if re.search(r"^[^@\s]*@.+:\d+:\d+\s*$", head, re.M):
        return "javascript"
    return "unknown"
