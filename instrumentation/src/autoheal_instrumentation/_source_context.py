"""Source lines around the failing lines, and the revision of the code, captured when a run fails.

Called only on the failure path (the successful path never imports this module). For each in-app
frame of the exception and its causes (innermost first, at most ``MAX_FRAMES``) the lines
``CONTEXT_LINES`` above and below the failing line are read through ``linecache``, scrubbed as
one text with the instrumentation's scrubber (a secret may span lines), cut to ``MAX_LINE_CHARS``
each and sent as the ``autoheal.source_context`` attribute of the ``exception`` span event: an
array of strings, one JSON object per frame (``file``/``line`` as in the stack trace text,
``function``, ``pre``/``context``/``post``, and ``path`` relative to the checkout holding the file,
when there is one). The service scrubs them again and never groups by them.

In-app here means a real file outside the interpreter's standard library, ``site-packages``/
``dist-packages`` and this package; the service applies its own in-app rules on top.

The revision: ``vcs.repository.url.full`` and ``vcs.ref.head.revision`` (OpenTelemetry resource
attributes) come from ``OTEL_RESOURCE_ATTRIBUTES`` when set there; else from GitHub Actions
(``GITHUB_SERVER_URL``/``GITHUB_REPOSITORY``/``GITHUB_SHA``, only when the failing file lies in
``GITHUB_WORKSPACE``: elsewhere they describe another repository); else from the Git checkout that
holds the innermost in-app file (``git rev-parse HEAD`` and the ``origin`` remote, credentials
removed from its URL).
"""

from __future__ import annotations

import json
import linecache
import os
import sysconfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

__all__ = [
    "CONTEXT_LINES",
    "MAX_FRAMES",
    "MAX_LINE_CHARS",
    "SOURCE_CONTEXT_KEY",
    "source_context_attributes",
    "vcs_attributes",
]

#: Attribute of the ``exception`` span event that carries the lines.
SOURCE_CONTEXT_KEY = "autoheal.source_context"
#: Lines sent on each side of the failing line.
CONTEXT_LINES = 5
#: In-app frames sent, innermost first.
MAX_FRAMES = 10
#: Longest line sent (cut after scrubbing, so that a secret is recognised whole first).
MAX_LINE_CHARS = 200
#: Longest line read before scrubbing (a minified line can be megabytes).
_READ_LINE_CHARS = 4 * MAX_LINE_CHARS
#: Longest JSON entry: the service keeps 4,000 characters of a context attribute value.
_MAX_ENTRY_CHARS = 3_900
#: Exceptions of a chain (``__cause__``/``__context__``) looked at.
_MAX_CHAIN = 8
#: Folders walked up from a file to find its checkout (the folder holding ``.git``).
_MAX_DEPTH = 40
#: Seconds one ``git`` call may take before the run gives up on the revision.
_GIT_TIMEOUT = 0.5

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_LIBRARY_SEGMENTS = frozenset({"site-packages", "dist-packages"})


def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {os.path.abspath(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib") if paths.get(k)}
    return (*sorted(d + os.sep for d in dirs), _PACKAGE_DIR + os.sep)


def _in_app(filename: str, library_dirs: tuple[str, ...]) -> bool:
    if not filename or filename.startswith("<"):
        return False
    path = os.path.abspath(filename)
    if path.startswith(library_dirs):
        return False
    return not _LIBRARY_SEGMENTS.intersection(path.split(os.sep))


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(out) < _MAX_CHAIN and all(current is not e for e in out):
        out.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return out


def _checkout_root(filename: str, cache: dict[str, str] | None = None) -> str:
    """The nearest folder above ``filename`` holding ``.git`` (a folder or a worktree's file), or ``""``."""
    folder = os.path.dirname(os.path.abspath(filename))
    cache = {} if cache is None else cache
    if folder in cache:
        return cache[folder]
    probe = folder
    root = ""
    for _ in range(_MAX_DEPTH):
        if os.path.exists(os.path.join(probe, ".git")):
            root = probe
            break
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    cache[folder] = root
    return root


def _scrubbed_lines(lines: list[str], scrub_text: Callable[[str], str]) -> list[str] | None:
    """Scrub as one text; ``None`` when a redaction joined lines (they would no longer line up)."""
    raw = [line.rstrip("\r\n").replace("\n", " ")[:_READ_LINE_CHARS] for line in lines]
    scrubbed = scrub_text("\n".join(raw)).split("\n")
    if len(scrubbed) != len(raw):
        return None
    return [line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…" for line in scrubbed]


def _entry(frame: Any, lineno: int, scrub_text: Callable[[str], str], roots: dict[str, str]) -> str | None:
    filename = frame.f_code.co_filename
    lines = linecache.getlines(filename, frame.f_globals)
    if not 0 < lineno <= len(lines):
        return None
    first = max(0, lineno - 1 - CONTEXT_LINES)
    window = _scrubbed_lines(lines[first: lineno + CONTEXT_LINES], scrub_text)
    if window is None:
        return None
    at = lineno - 1 - first
    data: dict[str, Any] = {
        "file": scrub_text(filename),
        "line": lineno,
        "function": scrub_text(frame.f_code.co_name),
        "pre": window[:at],
        "context": window[at],
        "post": window[at + 1:],
    }
    root = _checkout_root(filename, roots)
    if root:
        data["path"] = scrub_text(os.path.relpath(os.path.abspath(filename), root).replace(os.sep, "/"))
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= _MAX_ENTRY_CHARS else None


def source_context_attributes(exc: BaseException, scrub_text: Callable[[str], str]) -> dict[str, list[str]]:
    """``{"autoheal.source_context": [...]}`` for ``exc``'s in-app frames, or ``{}``; never raises."""
    try:
        library_dirs = _library_dirs()
        roots: dict[str, str] = {}
        entries: list[str] = []
        seen: set[tuple[str, int]] = set()
        for error in _chain(exc):
            frames = []
            tb = error.__traceback__
            while tb is not None:
                frames.append((tb.tb_frame, tb.tb_lineno))
                tb = tb.tb_next
            for frame, lineno in reversed(frames):
                key = (frame.f_code.co_filename, lineno)
                if key in seen or not _in_app(key[0], library_dirs):
                    continue
                seen.add(key)
                entry = _entry(frame, lineno, scrub_text, roots)
                if entry is not None:
                    entries.append(entry)
                if len(entries) == MAX_FRAMES:
                    return {SOURCE_CONTEXT_KEY: entries}
        return {SOURCE_CONTEXT_KEY: entries} if entries else {}
    except Exception:  # never let the report of a failure fail
        return {}


def _innermost_in_app_file(exc: BaseException) -> str:
    library_dirs = _library_dirs()
    tb = exc.__traceback__
    found = ""
    while tb is not None:
        if _in_app(tb.tb_frame.f_code.co_filename, library_dirs):
            found = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return found


def _https_remote(url: str) -> str:
    """A clone URL as ``https://host/owner/repo`` without credentials (``git@host:o/r.git`` too)."""
    from urllib.parse import urlsplit

    url = url.strip()
    if "://" not in url and ":" in url:  # scp-like: user@host:owner/repo.git
        user_host, _, path = url.partition(":")
        host = user_host.rpartition("@")[2]
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http", "ssh", "git"):
            return ""
        host, path = parts.hostname or "", parts.path
    path = path.strip("/").removesuffix(".git")
    return f"https://{host}/{path}" if host and path.count("/") == 1 else ""


def _git(root: str, *args: str) -> str:
    import shutil
    import subprocess

    git = shutil.which("git")
    if git is None:
        return ""
    try:
        done = subprocess.run(
            [git, "-C", root, *args], capture_output=True, text=True, timeout=_GIT_TIMEOUT, check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def vcs_attributes(
    where: BaseException | str, configured: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``vcs.repository.url.full``/``vcs.ref.head.revision`` for the code that failed (``where``:
    the exception, whose innermost in-app file decides, or a file), or ``{}`` (already in
    ``OTEL_RESOURCE_ATTRIBUTES``, or unknown); never raises."""
    if "vcs.ref.head.revision" in configured:
        return {}
    env = os.environ if env is None else env
    try:
        filename = where if isinstance(where, str) else _innermost_in_app_file(where)
        if not filename or not _in_app(filename, _library_dirs()):
            return {}
        path = os.path.abspath(filename)
        workspace = env.get("GITHUB_WORKSPACE", "")
        if env.get("GITHUB_SHA") and workspace and path.startswith(os.path.abspath(workspace) + os.sep):
            server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
            repository = env.get("GITHUB_REPOSITORY", "")
            out = {"vcs.ref.head.revision": env["GITHUB_SHA"]}
            if repository:
                out["vcs.repository.url.full"] = f"{server}/{repository}"
            return out
        root = _checkout_root(path)
        if not root:
            return {}
        revision = _git(root, "rev-parse", "--verify", "-q", "HEAD")
        if not revision:
            return {}
        out = {"vcs.ref.head.revision": revision}
        remote = _https_remote(_git(root, "config", "--get", "remote.origin.url"))
        if remote:
            out["vcs.repository.url.full"] = remote
        return out
    except Exception:
        return {}
