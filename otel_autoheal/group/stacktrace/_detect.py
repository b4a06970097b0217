"""Which runtime printed a stack: the first format whose frame shape appears, most specific first."""

from __future__ import annotations

import re

__all__ = ["detect_language"]

# Go 1.21+ may add the goroutine's and thread's addresses: "goroutine 1 gp=0xc000002380 m=0 mp=0x… [running]:".
_GOROUTINE = re.compile(r"^goroutine \d+ (?:[gm]p?=\S+ )*\[", re.M)
# A .NET frame without file: "at Ns.Type.Method(String sku, Int32 qty)" (parameters: type, space, name).
_DOTNET_PARAM = r"[\w.`\[\]<>]+ \w+"
_DOTNET_SIGNATURE = re.compile(rf"^[ \t]*at [\w.`<>+]+\((?:{_DOTNET_PARAM}(?:, {_DOTNET_PARAM})*)?\)[ \t]*$", re.M)
# A panic, a backtrace heading, or a numbered symbol followed by its ".rs" location.
_RUST = re.compile(
    r"^thread '[^'\n]*' panicked at |^(?:stack backtrace|Stack backtrace):$"
    r"|^ *\d+: +(?:0x[0-9a-f]+ - )?\S[^\n]*\n +at [^\n]*\.rs:\d+",
    re.M,
)
# Elixir's Exception.format_stacktrace: "    (app 0.1.0) lib/app/worker.ex:12: App.Worker.run/1".
_ELIXIR = re.compile(
    r"^ +\([a-z]\w*(?: [^()\s]+)?\) (?:[^\s:()][^\s:]*(?::\d+)?: )?(?::?[\w\"]+\.|anonymous fn/)"
    r"|^ +[^\s:()][^\s:]*\.exs?:\d+: (?::?[\w\"]+\.|anonymous fn/)",
    re.M,
)
# Thread.callStackSymbols: "3   ShopApp    0x0000000104a1c3d4 $s7ShopApp…KF + 212".
_SWIFT = re.compile(r"^\d+ +[^ \n]+ +0x[0-9a-fA-F]+ [^\n]+ \+ \d+[ \t]*$", re.M)
# boost::stacktrace and libstdc++'s std::stacktrace: " 0# shop::Cart::total() at /src/cart.cpp:42".
_CPP = re.compile(r"^ *\d+# [^\n]*(?: at [^ \n]+:\d+| in [^ \n]+)$", re.M)
# Erlang's printed stacktrace term: "[{my_worker,run,1,[{file,"src/my_worker.erl"},{line,12}]}|...]".
_ERLANG_TERM = re.compile(r"^\s*\[\{(?:'[^'\n]*'|[a-z][\w@]*),(?:'[^'\n]*'|[a-z][\w@]*),(?:\d+|\[)")


def detect_language(text: str) -> str:
    """Guess which runtime printed ``text`` (a key of the parser table, or ``"unknown"``).

    Only the first 20,000 characters are read, and every pattern is anchored to a line start with
    no nested or overlapping repetition, so a hostile text costs time linear in that head.
    """
    head = text[:20000]
    if "Traceback (most recent call last)" in head or re.search(r'^[ \t]*File "[^"]*", line \d+', head, re.M):
        return "python"
    if _GOROUTINE.search(head) or re.search(r"^\t[^\n]*\.go:\d+", head, re.M):
        return "go"
    if _RUST.search(head) or "Backtrace [{ fn: " in head:
        return "rust"
    if _ELIXIR.search(head):
        return "elixir"
    if _ERLANG_TERM.match(head):
        return "erlang-term"
    if _SWIFT.search(head):
        return "swift"
    if _CPP.search(head):
        return "cpp"
    if re.search(r"^[ \t]*at [\w$.{}]+\([^)\n]*\.php:\d+\)", head, re.M):
        return "php-otel"  # PHP's OpenTelemetry SDK formats stacks like Java
    if re.search(r"^[ \t]*at (?:[\w.\-@]*/)*[\w$.]+\([\w$.]*\.(?:java|kt|scala|groovy|clj):\d+\)", head, re.M) or re.search(
        r"^[ \t]*at (?:[\w.\-@]*/)*[\w$.]+\((?:Native Method|Unknown Source)\)", head, re.M
    ):
        return "java"
    if re.search(r"^[ \t]*at [^(\n]+\([^)\n]*\)(?: in [^\n]+:line \d+)?[ \t]*$", head, re.M) and (
        ":line " in head or _DOTNET_SIGNATURE.search(head)
    ):
        return "dotnet"
    if re.search(r"^[ \t]*(?:from )?[^\s:][^:\n]*:\d+:in [`'][^'`\n]+'", head, re.M):
        return "ruby"
    if re.search(r"^#\d+ [^(\n]+\(\d+\): ", head, re.M):
        return "php"
    if re.search(r"^[ \t]*at [^\n]*:\d+:\d+\)?[ \t]*$", head, re.M) or re.search(r"^[ \t]*at [^\n(]+ \([^\n]+\)[ \t]*$", head, re.M):
        return "javascript"
    if re.search(r"^[^@\s]*@[^\n]+:\d+:\d+[ \t]*$", head, re.M):
        return "javascript"
    return "unknown"
