"""Symbolication speed: minified JavaScript frames resolved through an uploaded source map.

    python bench/symbolicate.py [--quick]

Builds a synthetic app (``--modules`` modules of small functions) with esbuild from
tests/sourcemaps/node_modules (``./scripts/setup.sh`` installs it), minified with a linked map,
uploads it into a temporary state database as ``sourcemaps upload`` does, then resolves stacks of
20 frames at real minified positions through ``Symbolicator`` (SQLite lookup + symbolic):

- cold: a new Symbolicator per stack, so every stack pays reading, decompressing and parsing the
  map (the first error of a release after a start);
- cached: one Symbolicator, its parsed-map cache warm (every later error of that release).
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from otel_autoheal.group.stacktrace import parse_stacktrace  # noqa: E402
from otel_autoheal.model import ExceptionRecord  # noqa: E402
from otel_autoheal.sourcemaps import Symbolicator, save_artifacts, scan_build  # noqa: E402
from otel_autoheal.state.sqlite import SQLiteStore  # noqa: E402

URL = "https://shop.example/assets/app.min.js"
FRAMES_PER_STACK = 20


def build_app(work: Path, modules: int) -> Path:
    """``modules`` source files of 20 functions each, bundled and minified; returns dist/."""
    src = work / "src"
    src.mkdir(parents=True)
    imports = []
    for m in range(modules):
        body = []
        for f in range(20):
            body.append(
                f"export function price{m}_{f}(order, rates) {{\n"
                f"  const subtotal = order.lines.reduce((sum, line) => sum + line.amount * line.qty, 0);\n"
                f"  if (rates.discount > {f}) return subtotal * (1 - rates.discount / 100) + {m};\n"
                f"  return subtotal + rates.shipping.base * {f + 1};\n}}\n"
            )
        (src / f"m{m}.js").write_text("\n".join(body))
        imports.append(f"import * as m{m} from './m{m}.js';")
    names = ", ".join(f"m{m}" for m in range(modules))  # every function stays in the bundle
    (src / "main.js").write_text("\n".join(imports) + f"\nwindow.pricing = [{names}];\n")
    esbuild = ROOT / "tests" / "sourcemaps" / "node_modules" / ".bin" / "esbuild"
    if not esbuild.exists():
        sys.exit(f"esbuild missing at {esbuild}: run ./scripts/setup.sh")
    subprocess.run([str(esbuild), str(src / "main.js"), "--bundle", "--minify", "--sourcemap", "--format=iife",
                    f"--outfile={work / 'dist' / 'assets' / 'app.min.js'}", "--log-level=warning"], check=True)
    return work / "dist"


def stacks(bundle: Path, count: int, seed: int = 3) -> list[str]:
    """V8 stacks whose frames sit at real positions of the minified code (each ``return``)."""
    code = bundle.read_text()
    first_line = code.split("\n", 1)[0]
    positions = [m.start() + 1 for m in re.finditer(r"return ", first_line)]
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        frames = "\n".join(f"    at f{i} ({URL}:1:{rng.choice(positions)})" for i in range(FRAMES_PER_STACK))
        out.append("TypeError: Cannot read properties of undefined (reading 'base')\n" + frames)
    return out


def record(stack: str) -> ExceptionRecord:
    rec = ExceptionRecord("TypeError", "x", stack, 0, "t", "s", "log", resource={"service.version": "1.0.0"})
    rec.chain = parse_stacktrace(stack, rec.type, rec.message)
    return rec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller app and fewer stacks")
    parser.add_argument("--modules", type=int, default=0, help="modules of 20 functions (default 200; quick 20)")
    args = parser.parse_args()
    modules = args.modules or (20 if args.quick else 200)
    with tempfile.TemporaryDirectory(prefix="autoheal-bench-smaps-") as tmp:
        work = Path(tmp)
        dist = build_app(work, modules)
        bundle = dist / "assets" / "app.min.js"
        map_size = (dist / "assets" / "app.min.js.map").stat().st_size
        store = SQLiteStore(work / "state" / "autoheal.sqlite3")
        save_artifacts(store, "1.0.0", scan_build(dist))
        texts = stacks(bundle, 20 if args.quick else 50)
        records = [record(t) for t in texts]
        print(f"app: {modules * 20} functions, bundle {bundle.stat().st_size / 1024:.0f} KiB, "
              f"map {map_size / 1024:.0f} KiB; stacks of {FRAMES_PER_STACK} frames")

        started = time.perf_counter()
        for rec in records:
            frames = Symbolicator(store).resolve(rec)[0].frames
            assert all(f.filename.startswith("src/") for f in frames), frames[0]
        cold = time.perf_counter() - started
        print(f"cold   (map read + parsed per stack): {len(records) * FRAMES_PER_STACK / cold:10.0f} frames/s "
              f"({cold / len(records) * 1000:.1f} ms per stack)")

        warm = Symbolicator(store)
        warm.resolve(records[0])
        rounds = 5 if args.quick else 20
        started = time.perf_counter()
        for _ in range(rounds):
            for rec in records:
                warm.resolve(rec)
        cached = time.perf_counter() - started
        total = rounds * len(records) * FRAMES_PER_STACK
        print(f"cached (parsed map reused):           {total / cached:10.0f} frames/s "
              f"({cached / (rounds * len(records)) * 1000:.2f} ms per stack)")
        store.close()


if __name__ == "__main__":
    main()
