"""C++: ``boost::stacktrace`` (and ``std::stacktrace``, C++23) as opentelemetry-cpp users print them.

One frame per line, innermost first: ``' 0# shop::Cart::total() const at /src/shop/cart.cpp:42'``
with debug information, ``' 3# __libc_start_main in /lib/x86_64-linux-gnu/libc.so.6'`` without
(the binary the code is in), or only an address; libstdc++'s ``std::stacktrace`` prints the same
``N# f at file:line`` lines. Parameter lists stay in the function (overloads are different
functions); addresses are dropped.
"""

from __future__ import annotations

import re

from otel_autoheal.group.inapp import InAppRules
from otel_autoheal.group.stacktrace._common import cap_frames, make_frame
from otel_autoheal.model import Frame, ParsedException

__all__ = ["parse_cpp"]

_FRAME = re.compile(r"^ *\d+# ?(?P<body>.*)$")
_AT = re.compile(r"^(?P<func>.*) at (?P<file>[^ ]+):(?P<line>\d+)$")
_IN = re.compile(r"^(?P<func>.*) in (?P<binary>[^ ]+)$")
_ADDRESS = re.compile(r"^(?:0x[0-9a-fA-F]+|\?\?)?$")


def parse_cpp(text: str, rules: InAppRules, fallback_type: str) -> list[ParsedException]:
    """One exception (type and message come from the telemetry) with every frame that names a function."""
    frames: list[Frame] = []
    for line in text.splitlines():
        match = _FRAME.match(line.rstrip())
        if not match:
            continue
        body = match.group("body").strip()
        filename, lineno, binary = "", None, ""
        located = _AT.match(body)
        if located:
            body, filename, lineno = located.group("func"), located.group("file"), int(located.group("line"))
        else:
            inside = _IN.match(body)
            if inside:
                body, binary = inside.group("func"), inside.group("binary")
        function = body.strip()
        if _ADDRESS.match(function):
            continue  # nothing but an address: it changes with every build and load
        name = function.split("(", 1)[0]
        # The namespace/class keys the frame; a global function ("main") is keyed by its name alone,
        # since debug builds name its file and release builds its binary.
        module = name.rsplit("::", 1)[0] if "::" in name else "(global)"
        frames.append(make_frame(rules, "cpp", filename or binary, function, lineno, None, module,
                                 package=binary))
    if not frames:
        return []
    frames.reverse()  # the innermost frame is printed first
    return [ParsedException(fallback_type, "", cap_frames(frames), "cpp")]
