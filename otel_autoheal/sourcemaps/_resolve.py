"""JavaScript frames → original file, line, column, function and source lines, before grouping.

Which map: the frame's bundle Debug ID (sent by the JS SDK in ``autoheal.js.debug_ids``), else
the release (``service.version``) + the bundle's URL among uploaded maps, else ``sourcemaps_dir``.
Lookups use Sentry's ``symbolic`` (``SourceMapCache``: the original function name comes from the
scopes of the minified code, the way Sentry resolves it, so the group key does not change when a
release renames ``e`` to ``t``). Parsed maps are cached, bounded by count and bytes.

A frame that cannot be resolved keeps its minified values and gets ``symbolication`` = why, when
it needed a map: a bundle with a Debug ID, or an in-app frame at a browser URL or of a release that
has uploaded maps (a plain Node app's files and a CDN's library scripts need none and say nothing).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from otel_autoheal._lru import BoundedLRU
from otel_autoheal.errors import ConfigError
from otel_autoheal.group.inapp import InAppRules, path_segments
from otel_autoheal.model import ExceptionRecord, Frame, ParsedException
from otel_autoheal.sourcemaps import _store
from otel_autoheal.sourcemaps._artifacts import debug_id_text, read_bundle_map

__all__ = ["CACHE_BYTES", "CACHE_ENTRIES", "CONTEXT_LINES", "DEBUG_IDS_ATTRIBUTE", "Symbolicator", "source_path"]

log = logging.getLogger("otel_autoheal.sourcemaps")

#: Span/log attribute the JS SDK puts the Debug IDs of the bundles in an error's stack in:
#: a list of ``"<debug id> <bundle URL>"``.
DEBUG_IDS_ATTRIBUTE = "autoheal.js.debug_ids"
#: Parsed maps kept, and the bytes (map + bundle) they may come from in total.
CACHE_ENTRIES = 64
CACHE_BYTES = 64 * 1024 * 1024
#: Source lines kept on each side of a resolved frame's line, and the longest kept line.
CONTEXT_LINES = 5
MAX_LINE_CHARS = 300
#: Distinct bundle files looked up per exception (the rest keep their minified frames).
MAX_FILES_PER_EXCEPTION = 32

_SCHEME_PREFIX = re.compile(r"^[a-z][a-z0-9+.\-]*://[^/]*/", re.I)
_NO_MAP_SCHEMES = ("node:", "native", "<anonymous>", "chrome-extension:", "moz-extension:", "safari-extension:",
                   "safari-web-extension:", "wasm:", "blob:", "data:")


def source_path(source: str) -> str:
    """A map's source name as a project path: ``webpack://app/./src/a.js``, ``../../src/a.js`` → ``src/a.js``."""
    name = _SCHEME_PREFIX.sub("", source) if source.startswith(("webpack:", "vite:", "rollup:")) else source
    name = name.removeprefix("file://")
    parts = name.replace("\\", "/").split("/")
    while parts and parts[0] in ("", ".", ".."):
        if parts[0] == "" and len(parts) > 1 and parts[1] not in ("", ".", ".."):
            break  # an absolute path stays absolute; the in-app rules cut it to the project
        parts.pop(0)
    return "/".join(p for p in parts if p != ".") or source


@dataclass(frozen=True)
class _Resolved:
    """A cache entry: a parsed map and what to call it in notes."""

    cache: Any  # symbolic.sourcemapcache.SourceMapCache
    label: str


def _debug_ids(record: ExceptionRecord) -> dict[str, str]:
    raw = record.span_attributes.get(DEBUG_IDS_ATTRIBUTE)
    entries = raw if isinstance(raw, (list, tuple)) else [raw] if isinstance(raw, str) else []
    out: dict[str, str] = {}
    for entry in entries[:64]:
        text, _, url = str(entry).strip().partition(" ")
        debug_id = debug_id_text(text)
        if url.strip() and debug_id:
            out[url.strip()] = debug_id
    return out


def _is_browser_url(filename: str) -> bool:
    return filename.startswith(("http://", "https://"))


def _read_from_directory(bundle: Path) -> tuple[bytes, bytes | None] | None:
    try:
        found = read_bundle_map(bundle)
        return (found[1], bundle.read_bytes()) if found else None
    except OSError:
        return None


class Symbolicator:
    """Resolves the JavaScript frames of exception chains through uploaded maps or ``sourcemaps_dir``."""

    def __init__(self, store: _store.MapStore | None, sourcemaps_dir: str = "", rules: InAppRules | None = None,
                 scrub: Callable[[str], str] = lambda text: text, cache_entries: int = CACHE_ENTRIES,
                 cache_bytes: int = CACHE_BYTES) -> None:
        self.store = store
        self.directory = Path(sourcemaps_dir).expanduser().resolve() if sourcemaps_dir else None
        if self.directory is not None and not self.directory.is_dir():
            raise ConfigError("sourcemaps_dir", f"{self.directory} is not a directory (the deployed build's "
                              "bundles and .map files; or leave it empty)")
        self.rules = rules or InAppRules()
        self.scrub = scrub
        self._cache: BoundedLRU[tuple[Any, ...], _Resolved | str] = BoundedLRU(max_entries=cache_entries,
                                                                               max_bytes=cache_bytes)
        self._lock = threading.Lock()
        if store is not None:
            _store.ensure_table(store)

    # -- finding and parsing maps -------------------------------------------------------------

    def _parsed(self, key: tuple[Any, ...], label: str, read: Callable[[], tuple[bytes, bytes | None] | None]) -> _Resolved | str:
        """The cached parse of ``key``, else ``read()`` it and parse; a string says why it failed."""
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        data = read()
        if data is None:
            return f"no source map for {label}"
        map_json, bundle = data
        from symbolic.sourcemapcache import SourceMapCache

        try:
            # Without the minified code, lines still resolve; function names then stay unknown.
            value: _Resolved | str = _Resolved(SourceMapCache.from_bytes(bundle or b"", map_json), label)
        except Exception as exc:  # symbolic raises its own types for every malformed input
            value = f"the source map of {label} cannot be read ({type(exc).__name__}: {str(exc)[:200]})"
            log.warning("%s", value)
        with self._lock:
            self._cache.put(key, value, len(map_json) + len(bundle or b""))
        return value

    def _from_store(self, row: _store.StoredMap, label: str) -> _Resolved | str:
        store = self.store
        assert store is not None
        return self._parsed(("db", row.id, row.uploaded), label, lambda: _store.load(store, row.id))

    def _from_directory(self, filename: str) -> _Resolved | str | None:
        """The map of the bundle at ``filename``'s URL path (or its longest tail) under ``sourcemaps_dir``."""
        if self.directory is None:
            return None
        segments = [s for s in path_segments(filename) if s != ".."]
        for start in range(len(segments)):
            bundle = self.directory.joinpath(*segments[start:])
            try:
                if not bundle.is_file() or not bundle.resolve().is_relative_to(self.directory):
                    continue
                stat = bundle.stat()
            except OSError:
                continue
            key = ("dir", str(bundle), stat.st_mtime_ns, stat.st_size)
            return self._parsed(key, str(bundle), functools.partial(_read_from_directory, bundle))
        return None

    def _locate(self, filename: str, release: str, debug_id: str | None) -> _Resolved | str:
        """The parsed map of ``filename``, or why there is none."""
        if debug_id and self.store is not None:
            row = _store.find_by_debug_id(self.store, debug_id)
            if row is not None:
                return self._from_store(row, f"Debug ID {debug_id}")
        if release and self.store is not None:
            row = _store.find_by_url(self.store, release, filename)
            if row is not None:
                return self._from_store(row, f"release {release} file {row.url}")
        from_dir = self._from_directory(filename)
        if from_dir is not None and not (isinstance(from_dir, str) and from_dir.startswith("no source map")):
            return from_dir
        reason = (f"no source map for release {release} and file {filename}" if release
                  else f"no source map for file {filename} (no release: service.version is not set)")
        if debug_id:
            reason += f", nor for its Debug ID {debug_id}"
        if self.directory is not None:
            reason += f", nor in sourcemaps_dir {self.directory}"
        return reason

    # -- resolving frames ---------------------------------------------------------------------

    def _context(self, lines: Sequence[str]) -> tuple[str, ...]:
        return tuple(self.scrub(line.rstrip("\r\n")[:MAX_LINE_CHARS]) for line in lines)

    def _resolve_frame(self, frame: Frame, found: _Resolved) -> Frame | str:
        assert frame.lineno is not None and frame.colno is not None
        try:
            token = found.cache.lookup(frame.lineno, frame.colno, CONTEXT_LINES)
        except Exception as exc:  # symbolic: a position it cannot handle is this frame's problem only
            return f"the source map of {found.label} failed at line {frame.lineno} column {frame.colno}: {exc}"
        if token is None or not token.src:
            return f"the source map of {found.label} has no mapping at line {frame.lineno} column {frame.colno}"
        filename = source_path(token.src)
        function = token.function_name if token.function_name and token.function_name != "<unknown>" else "<anonymous>"
        in_app, instrumentation = self.rules.classify(filename, None, function, "javascript")
        context_line = self.scrub(token.context_line.rstrip("\r\n")[:MAX_LINE_CHARS]) if token.context_line else None
        return replace(
            frame, filename=filename, function=function, lineno=token.line, colno=token.col, module=None,
            in_app=in_app, instrumentation=instrumentation, source_line=context_line.strip() if context_line else None,
            pre_context=self._context(token.pre_context), context_line=context_line,
            post_context=self._context(token.post_context), symbolication=None,
        )

    def resolve(self, record: ExceptionRecord) -> list[ParsedException]:
        """``record.chain`` with its JavaScript frames resolved where a map is known."""
        chain = record.chain
        if not any(p.language == "javascript" and p.frames for p in chain):
            return chain
        release = record.service_version
        debug_ids = _debug_ids(record)
        located: dict[str, _Resolved | str] = {}
        release_has_maps: bool | None = None
        out = []
        for parsed in chain:
            if parsed.language != "javascript":
                out.append(parsed)
                continue
            frames = []
            for frame in parsed.frames:
                filename = frame.filename
                if frame.lineno is None or frame.colno is None or filename.startswith(_NO_MAP_SCHEMES):
                    frames.append(frame)
                    continue
                if filename not in located:
                    if len(located) >= MAX_FILES_PER_EXCEPTION:
                        frames.append(frame)
                        continue
                    located[filename] = self._locate(filename, release, debug_ids.get(filename))
                found = located[filename]
                result = self._resolve_frame(frame, found) if isinstance(found, _Resolved) else found
                if isinstance(result, Frame):
                    frames.append(result)
                    continue
                if release_has_maps is None:
                    release_has_maps = bool(release) and self.store is not None and _store.release_has_maps(
                        self.store, release)
                # Library code (a CDN's script, node_modules) without a map is no news worth a note.
                needed = filename in debug_ids or (frame.in_app and (
                    _is_browser_url(filename) or bool(release_has_maps) or isinstance(found, _Resolved)))
                frames.append(replace(frame, symbolication=result) if needed else frame)
            out.append(replace(parsed, frames=tuple(frames)))
        return out
