"""Helpers of the source-map tests: the test shop's builds, a static site, the CLI."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
JS_DIR = REPO / "js-instrumentation"
CHROMIUM = os.environ.get("AUTOHEAL_CHROMIUM", "/usr/bin/chromium")


def fresh_build(shop_builds: dict[str, Path], variant: str, tmp_path: Path) -> Path:
    """A private copy of one build's project (tests inject Debug IDs into theirs)."""
    target = tmp_path / f"project-{variant}"
    shutil.copytree(shop_builds[variant], target)
    return target


class Site:
    """A static web server on 127.0.0.1 serving the SDK and whichever build was deployed last."""

    def __init__(self, root: Path) -> None:
        self.root = root
        handler = functools.partial(_QuietHandler, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def deploy(self, project: Path, release: str, endpoint: str) -> None:
        """Replace the site's assets with ``project``'s dist/ and write its page for ``release``."""
        shutil.rmtree(self.root / "assets", ignore_errors=True)
        shutil.copytree(project / "dist" / "assets", self.root / "assets")
        (self.root / "sdk").mkdir(exist_ok=True)
        shutil.copy(JS_DIR / "dist" / "otel-autoheal.iife.min.js", self.root / "sdk" / "otel-autoheal.iife.min.js")
        shop = json.dumps({"endpoint": endpoint, "release": release})
        (self.root / "index.html").write_text(
            "<!doctype html><html><head><meta charset=utf-8><title>shop</title>\n"
            f"<script>window.__shop = {shop}; window.addEventListener('error', function () {{ window.__thrown = true; }});</script>\n"
            '<script src="/sdk/otel-autoheal.iife.min.js"></script>\n'
            '<script src="/assets/app.min.js"></script>\n'
            "</head><body>shop</body></html>\n"
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``otel-autoheal`` with this checkout's code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOHEAL_", "OTEL_"))}
    done = subprocess.run([sys.executable, "-m", "otel_autoheal", *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=120)
    if check:
        assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done
