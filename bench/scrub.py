"""Scrubbing throughput: today's scrubbers vs the shared RE2 / Python-re engine, in one process.

    python bench/scrub.py [--quick]

Baselines: ``bench/_legacy_scrub.py`` and ``bench/_legacy_instr_scrub.py`` are verbatim copies of
the service's and the instrumentation's scrubbers before the shared rule set (commit 4010cca),
kept here only so that both run next to the new engine. Prints MB/s on a realistic mix (stack
traces, log lines, JSON, URLs, ~5% of lines with a secret from the test corpus) and on
adversarial inputs, and the growth ratio time(2n)/time(n) of each engine (≈2 linear, ≈4
quadratic). A legacy run that would exceed the per-case budget is not started; its cell says so.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "instrumentation" / "src"), str(ROOT / "bench")]

import _legacy_instr_scrub  # noqa: E402
import _legacy_scrub  # noqa: E402

from otel_autoheal._scrub_engine import Engine  # noqa: E402
from otel_autoheal.scrub import Scrubber  # noqa: E402

Scrub = Callable[[str], str]


def realistic_mix(size: int, seed: int = 7) -> list[str]:
    """Texts like those the pipeline scrubs: messages, stacks, log bodies, JSON attributes."""
    rng = random.Random(seed)
    corpus = [json.loads(line) for line in (ROOT / "tests" / "testdata" / "secrets" / "corpus.jsonl").read_text().splitlines()]
    secrets = [e["input"] for e in corpus if e["kind"] == "text"]
    templates = [
        'Traceback (most recent call last):\n  File "/app/service/handlers/orders.py", line {n}, in create_order\n'
        '    order = repository.save(payload)\n  File "/app/service/db.py", line {m}, in save\n'
        '    cursor.execute(sql, params)\npsycopg.errors.UniqueViolation: duplicate key value violates unique constraint "orders_pkey"',
        "TypeError: Cannot read properties of undefined (reading 'items')\n    at renderCart (https://shop.example.com/static/js/main.{h}.js:1:{n})\n"
        "    at HTMLButtonElement.onClick (https://shop.example.com/static/js/main.{h}.js:1:{m})",
        "GET https://api.example.com/v1/users/{n}/orders?page={m}&limit=50 returned 503 after 3 retries (trace_id={t})",
        '{{"user_id": {n}, "cart": {{"items": {m}, "currency": "EUR"}}, "feature_flags": ["checkout_v2", "fast_pay"], "region": "eu-west-1"}}',
        "2025-01-01T12:00:{m:02d}Z INFO worker-{n} processed batch {t} in {m}ms (queue depth {n})",
        "ValueError: invalid literal for int() with base 10: 'abc{n}' while parsing config section [database] key port",
    ]
    out, total = [], 0
    while total < size:
        if rng.random() < 0.05:
            text = rng.choice(secrets)
        else:
            text = rng.choice(templates).format(
                n=rng.randint(1, 9999), m=rng.randint(0, 59), h=f"{rng.getrandbits(32):08x}", t=f"{rng.getrandbits(128):032x}"
            )
        out.append(text)
        total += len(text)
    return out


ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "`a.` repeated": lambda n: "a." * (n // 2),
    "`a=` repeated": lambda n: "a=" * (n // 2),
    "`:` repeated": lambda n: ":" * n,
    "`@` repeated": lambda n: "@" * n,
    "`a:b@` repeated": lambda n: "a:b@" * (n // 4),
    "token-like chars": lambda n: "A" * n,
    "`password=` repeated": lambda n: "password=" * (n // 9),
    "`http://a:` repeated": lambda n: "http://a:" * (n // 9),
    "`--token ` repeated": lambda n: "--token " * (n // 8),
}


def timed(scrub: Scrub, texts: list[str], budget: float) -> float | None:
    """Best wall time over repeated runs of ``texts`` (at least 3, more for fast cases: up to 25 or
    one second in all, so that a shared machine's noise does not decide), or None when one run
    exceeds ``budget``."""
    best, spent, runs = float("inf"), 0.0, 0
    while runs < 3 or (spent < 1.0 and runs < 25):
        start = time.perf_counter()
        for text in texts:
            scrub(text)
        elapsed = time.perf_counter() - start
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
        if elapsed > budget:
            return None if elapsed > budget * 4 else best
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs")
    args = parser.parse_args()
    mix_size = 400_000 if args.quick else 2_000_000
    adv_size = 65_536 if args.quick else 262_144
    legacy_sizes = (2_000, 4_000) if args.quick else (4_000, 8_000)

    legacy_service = _legacy_scrub.Scrubber()
    new_service = Scrubber()
    python_re = Engine(regex=re)
    engines: dict[str, Scrub] = {
        "legacy service (re)": legacy_service.text,
        "legacy instrumentation (re)": _legacy_instr_scrub.scrub_text,
        "new, service (RE2)": new_service.text,
        "new, instrumentation (Python re)": python_re.text,
    }

    mix = realistic_mix(mix_size)
    mb = sum(len(t.encode()) for t in mix) / 1e6
    print(f"## Realistic mix: {len(mix)} texts, {mb:.2f} MB\n")
    print("| scrubber | MB/s | vs legacy service |")
    print("| --- | ---: | ---: |")
    base = None
    for name, scrub in engines.items():
        elapsed = timed(scrub, mix, budget=120)
        rate = mb / elapsed if elapsed else 0.0
        base = base or rate
        print(f"| {name} | {rate:.2f} | {rate / base:.2f}× |")

    print(f"\n## Adversarial inputs (new engines at {adv_size // 1024} KB and half that; legacy at "
          f"{legacy_sizes[1] // 1000} KB and half that, skipped beyond a budget)\n")
    print("| input | legacy service MB/s (growth) | legacy instr. MB/s (growth) | new RE2 MB/s (growth) | new Python re MB/s (growth) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, make in ADVERSARIAL.items():
        cells = []
        for name, scrub in engines.items():
            small, large = (legacy_sizes if name.startswith("legacy") else (adv_size // 2, adv_size))
            t_small = timed(scrub, [make(small)], budget=10)
            t_large = timed(scrub, [make(large)], budget=10) if t_small is not None else None
            if t_small is None or t_large is None:
                cells.append("> budget (10 s)")
                continue
            rate = len(make(large)) / 1e6 / t_large
            cells.append(f"{rate:.3g} ({t_large / t_small:.1f}×)")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
