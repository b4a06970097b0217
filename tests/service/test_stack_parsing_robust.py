"""Hostile or meaningless stack text: never an error, never more than linear work.

Every format's parser gets the first line of a real stack of its kind (so detection routes the
text to it) followed by shapes that make backtracking regular expressions or nested loops blow
up: long runs of one character, unbalanced brackets, repeated separators. Work is measured in
process CPU time and only compared with itself at another size, never with a fixed duration.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from otel_autoheal.group.stacktrace import detect_language, parse_stacktrace

#: The first line of a real stack of each format: enough for detection to pick that parser.
FORMAT_HEADS = {
    "python": "Traceback (most recent call last):\n",
    "go": "goroutine 1 [running]:\n",
    "rust": "thread 'main' panicked at src/main.rs:1:1:\n",
    "elixir": "    (shop 0.1.0) lib/shop/a.ex:1: Shop.A.b/1\n",
    "erlang-term": '[{shop_a,b,1,[{file,"src/shop_a.erl"},{line,1}]}',
    "java": "\tat com.acme.A.run(A.java:1)\n",
    "dotnet": "   at Acme.A.B() in /src/A.cs:line 1\n",
    "ruby": "app/a.rb:1:in 'run'\n",
    "php": "#0 /srv/a.php(1): run()\n",
    "javascript": "    at run (/srv/a.js:1:1)\n",
    "gecko": "run@http://shop.example/a.js:1:1\n",
    "swift": "0   ShopApp    0x0000000104a1c3d4 $s7ShopApp1AC3runyyF + 12\n",
    "cpp": " 0# shop::A::run() at /src/shop/a.cpp:1\n",
    "none": "",
}

#: Shapes that are cheap to write and expensive to match badly; ``n`` is the size in characters.
HOSTILE: dict[str, Callable[[int], str]] = {
    "v8 nested parens": lambda n: "at " + " (" * (n // 2),
    "newlines": lambda n: "\n" * n,
    "spaces": lambda n: " " * n + "x",
    "tabs": lambda n: "\t" * n + "x.go:1!",
    "capitals": lambda n: "A" * n + "!",
    "caused by capitals": lambda n: "Caused by: " + "A" * n + "!",
    "dotnet parameters": lambda n: "   at X(" + "a bb " * (n // 5) + "!)",
    "go calls": lambda n: "f(" * (n // 2),
    "group pipes": lambda n: "  | " * (n // 4),
    "group separators": lambda n: "+-+" * (n // 3),
    "python files": lambda n: 'File "' * (n // 6),
    "rust generics": lambda n: "   0: " + "<" * n,
    "colons": lambda n: "a:" * (n // 2),
    "elixir arguments": lambda n: "    (app) lib/x.ex:1: A.b(" + "A(" * (n // 2),
    "elixir anonymous": lambda n: "    (app) " + "anonymous fn/1 in " * (n // 18),
    "php hashes": lambda n: "#0 " + "(" * n,
    "at signs": lambda n: "@" * n,
    "gecko": lambda n: "a@" * (n // 2) + ":1:1x",
    "rust debug": lambda n: '{ fn: "' * (n // 7),
    "erlang term": lambda n: "[{a,b,1,[" * (n // 9),
    "dotnet files": lambda n: "   at A.B() in " + "x:line 1" * (n // 8) + "!",
    "java dots": lambda n: "\tat " + "a." * (n // 2),
    "numbered lines": lambda n: "  1: x\n" * (n // 7),
    "many frames": lambda n: "    at f (/srv/a.js:1:1)\n" * (n // 25),
    "swift symbols": lambda n: "1 A 0x1 " + "a + 1" * (n // 5),
    "cpp locations": lambda n: " 1# f" + " at x" * (n // 5) + " in " + "y" * (n // 2),
}

CASES = [(fmt, shape) for fmt in FORMAT_HEADS for shape in HOSTILE]


def _text(fmt: str, shape: str, size: int) -> str:
    return FORMAT_HEADS[fmt] + HOSTILE[shape](size)


def _cpu_cost(text: str) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        parse_stacktrace(text, "", "")
        best = min(best, time.process_time() - start)
    return best


@pytest.mark.parametrize("fmt", sorted(FORMAT_HEADS))
def test_every_head_is_detected_as_its_format(fmt: str):
    """Each hostile case really exercises the parser it is meant for."""
    expected = {"gecko": "javascript", "none": "unknown"}.get(fmt, fmt)
    assert detect_language(FORMAT_HEADS[fmt] + "x\n") == expected


@pytest.mark.parametrize("fmt,shape", CASES, ids=[f"{f}/{s}" for f, s in CASES])
def test_hostile_text_gives_an_exception_never_an_error(fmt: str, shape: str):
    """Whatever the text, parsing returns a chain headed by the telemetry's type and message."""
    chain = parse_stacktrace(_text(fmt, shape, 3000), "BoomError", "boom")
    assert chain and (chain[0].type, chain[0].message) == ("BoomError", "boom")


def test_random_bytes_and_truncations_never_raise():
    """Random printable garbage and every prefix of a real multi-format text parse without an error."""
    rng = random.Random(20261130)
    alphabet = "abcAB01 \t\n:()[]{}<>|+-@#.\"'/\\,*$`~!?" + "━⋮"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        for head in FORMAT_HEADS.values():
            assert parse_stacktrace(head + text)
    mixed = "".join(FORMAT_HEADS.values()) * 3
    for cut in range(len(mixed)):
        assert parse_stacktrace(mixed[:cut], "E", "m")


def test_parsing_cost_grows_linearly_with_hostile_text():
    """Four times the text costs about four times the work, for every format and shape (not 16×)."""
    small, large = 16_000, 64_000
    costs = {case: (_cpu_cost(_text(*case, small)), _cpu_cost(_text(*case, large))) for case in CASES}
    total_small = sum(c[0] for c in costs.values())
    total_large = sum(c[1] for c in costs.values())
    assert total_large < 8 * total_small, f"total {total_small:.3f}s → {total_large:.3f}s"
    # Per case, only where the work is large enough to be measured reliably.
    significant = {case: c for case, c in costs.items() if c[1] > total_large / 50}
    slow = {f"{f}/{s}": f"{c[0]:.4f}s → {c[1]:.4f}s" for (f, s), c in significant.items() if c[1] > 10 * c[0]}
    assert not slow, slow
