"""Elixir and Erlang (the BEAM).

Elixir's OpenTelemetry API records ``Exception.format_stacktrace/1``: one frame per line,
``    (app 0.1.0) lib/app/worker.ex:12: App.Worker.run/1`` — the OTP application and its version
(either may be missing), ``file:line: `` (either may be missing), then the call: ``Mod.fun/arity``,
``:erlang_mod.fun/arity``, ``Mod.fun(args)`` for the frame that got the arguments, or
``anonymous fn/2 in Mod.fun/1``. The message is not part of it (``exception.message`` carries it).

Erlang's ``otel_span:record_exception`` records the raw term, ``~0tP``-printed and cut after 50
characters: ``[{my_worker,run,1,[{file,"src/my_worker.erl"},{line,12}]},{gen_server|...}|...]``;
every complete frame in it is kept.
"""

from __future__ import annotations

import re

from otel_autoheal.group.inapp import InAppRules
from otel_autoheal.group.stacktrace._common import cap_frames, make_frame
from otel_autoheal.model import Frame, ParsedException

__all__ = ["parse_elixir", "parse_erlang_term"]

_APP = re.compile(r"^\((?P<app>[a-z]\w*)(?: (?P<vsn>[^()\s]+))?\) ")
_LOCATION = re.compile(r"^(?P<file>[^\s:()][^\s:]*?)(?::(?P<line>\d+))?: ")
# Nested anonymous functions print as "anonymous fn/1 in anonymous fn/2 in Mod.f/1": the named one counts.
_ANONYMOUS = re.compile(r"^anonymous fn/(?P<arity>\d+) in (?:anonymous fn/\d+ in )*")
# Erlang's own funs are named by the compiler: "-run/1-fun-0-", "-map/2-lists^map/1-1-".
_ERLANG_TERM_FRAME = re.compile(
    r"\{(?P<mod>'[^'\n]*'|[a-z][\w@]*),(?P<fun>'[^'\n]*'|[a-z][\w@]*),(?P<arity>\d+),"
    r"\[(?:\{file,\"(?P<file>[^\"\n]*)\"\},\{line,(?P<line>\d+)\})?"
)


def _split_call(call: str) -> tuple[str, str]:
    """``App.Worker.run/1`` → (``App.Worker``, ``run/1``); ``App.Worker.run(1, :x)`` → (``App.Worker``, ``run/2``)."""
    anonymous = _ANONYMOUS.match(call)
    if anonymous:
        module, function = _split_call(call[anonymous.end():])
        return module, f"{function} (fn/{anonymous.group('arity')})"
    paren = call.find("(")
    if paren > 0 and call.endswith(")"):
        args = call[paren + 1:-1].strip()
        # Only the arity matters to a key: values change from one occurrence to the next.
        arity = 0 if not args else _top_level_commas(args) + 1
        head, tail = call[:paren], f"/{arity}"
    else:
        head, slash, arity_text = call.rpartition("/")
        head, tail = (head, f"/{arity_text}") if slash and arity_text.isdigit() else (call, "")
    if head.endswith('"') and '."' in head:  # a quoted function name may contain dots
        module, _, function = head.rpartition('."')
        return module, f'"{function}{tail}'
    module, _, function = head.rpartition(".")
    return module, f"{function}{tail}"


def _top_level_commas(args: str) -> int:
    """Commas between arguments, not inside lists, maps, tuples, binaries (``<<1, 2>>``) or strings."""
    depth, commas, quoted = 0, 0, False
    for char in args.replace("<<", "\x01").replace(">>", "\x02"):
        if char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char in "([{\x01":
            depth += 1
        elif char in ")]}\x02":
            depth -= 1
        elif char == "," and depth == 0:
            commas += 1
    return commas


def parse_elixir(text: str, rules: InAppRules, fallback_type: str) -> list[ParsedException]:
    """One exception (type and message come from the telemetry) with every formatted frame."""
    frames: list[Frame] = []
    header: list[str] = []
    for line in text.splitlines():
        rest = line.strip()
        if not rest:
            continue
        app_match = _APP.match(rest)
        app = app_match.group("app") if app_match else ""
        if app_match:
            rest = rest[app_match.end():]
        location = _LOCATION.match(rest)
        filename, lineno = "", None
        if location:
            filename, lineno = location.group("file"), int(location.group("line")) if location.group("line") else None
            rest = rest[location.end():]
        if not (app_match or location) or not re.match(r'^(?::?[\w."]+\.|anonymous fn/)', rest):
            if not frames:
                header.append(line.strip())  # "** (ArgumentError) …" when a whole report was sent
            continue
        module, function = _split_call(rest)
        frames.append(make_frame(rules, "elixir", filename, function, lineno, None, module or None, package=app))
    exc_type, message = fallback_type, ""
    first = header[0] if header else ""
    reported = re.match(r"^\*\* \((?P<type>[\w.]+)\) (?P<msg>.*)$", first)
    if reported:
        exc_type, message = reported.group("type"), reported.group("msg")
    if not frames and not reported:
        return []
    frames.reverse()  # the BEAM lists the innermost frame first
    return [ParsedException(exc_type, message, cap_frames(frames), "elixir")]


def parse_erlang_term(text: str, rules: InAppRules, fallback_type: str) -> list[ParsedException]:
    """Erlang's printed stacktrace term, as far as it was printed."""
    frames: list[Frame] = []
    for match in _ERLANG_TERM_FRAME.finditer(text):
        module = ":" + match.group("mod").strip("'")
        function = f"{match.group('fun').strip(chr(39))}/{match.group('arity')}"
        line = match.group("line")
        frames.append(make_frame(rules, "elixir", match.group("file") or "", function, int(line) if line else None,
                                 None, module))
    if not frames:
        return []
    frames.reverse()
    return [ParsedException(fallback_type, "", cap_frames(frames), "elixir")]
