"""Swift/Objective-C: ``Thread.callStackSymbols`` (what Apple-platform SDKs record) and crash-report thread lists.

One frame per line: index, binary image, address, then the symbol and an offset:
``3   ShopApp    0x0000000104a1c3d4 $s7ShopApp15CheckoutServiceC5totalySdKF + 212``. Swift symbols
are mangled (stable for unchanged code, so they are the key); Objective-C ones read
``-[UIApplication sendAction:to:from:forEvent:]``. Addresses and offsets change with every build
and launch and are dropped; a frame printed without a symbol (``ShopApp + 115668``, an
unsymbolicated release build) says nothing that survives a rebuild and is left out.
"""

from __future__ import annotations

import re

from otel_autoheal.group.inapp import InAppRules
from otel_autoheal.group.stacktrace._common import cap_frames, make_frame
from otel_autoheal.model import Frame, ParsedException

__all__ = ["parse_swift", "swift_readable_name"]

_FRAME = re.compile(r"^\s*\d+\s+(?P<image>\S+)\s+0x[0-9a-fA-F]+ (?P<symbol>.+?) \+ \d+\s*$")
_MANGLED_PREFIXES = ("$s", "$S", "_$s", "_$S", "_T0")


def swift_readable_name(symbol: str) -> str:
    """``$s7ShopApp15CheckoutServiceC5totalySdKF`` → ``CheckoutService.total``; other symbols unchanged.

    Reads the leading length-prefixed identifiers of a mangled name (module, types, function) and
    drops the module; names using the mangling's substitutions stay as they are.
    """
    prefix = next((p for p in _MANGLED_PREFIXES if symbol.startswith(p)), None)
    if prefix is None:
        return symbol
    names: list[str] = []
    i = len(prefix)
    while i < len(symbol) and symbol[i].isdigit():
        j = i
        while j < len(symbol) and symbol[j].isdigit():
            j += 1
        length = int(symbol[i:j])
        names.append(symbol[j:j + length])
        i = j + length
        # A nominal type's kind (class, struct, enum) sits between its name and the next name.
        if i + 1 < len(symbol) and symbol[i] in "CVO" and symbol[i + 1].isdigit():
            i += 1
    return ".".join(names[1:]) if len(names) > 1 else symbol


def parse_swift(text: str, rules: InAppRules, fallback_type: str) -> list[ParsedException]:
    """One exception (type and message come from the telemetry) with the symbolicated frames."""
    frames: list[Frame] = []
    for line in text.splitlines():
        match = _FRAME.match(line)
        if not match:
            continue
        image, symbol = match.group("image"), match.group("symbol").strip()
        if symbol.startswith("0x") or symbol == image:
            continue  # unsymbolicated: only an address inside the image
        # The binary image stands in for the file, which callStackSymbols never names.
        frames.append(make_frame(rules, "swift", image, symbol, None, None, image, package=image))
    if not frames:
        return []
    frames.reverse()  # the innermost frame is printed first
    return [ParsedException(fallback_type, "", cap_frames(frames), "swift")]
