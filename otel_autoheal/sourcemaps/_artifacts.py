"""A build directory → the artifacts to upload, and Debug ID injection for bundlers that emit none.

A bundle's map is found through its ``//# sourceMappingURL=`` comment (a relative file or an inline
``data:`` URL) or as ``<bundle>.map`` next to it. Its Debug ID comes from the bundle's
``//# debugId=`` comment or the map's ``debugId`` field (the TC39 proposal's names; webpack,
Rollup and Vite emit them, and ``sourcemaps inject`` adds them to any build). A map without
``sourcesContent`` gets it from the source files it names, when they are readable.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from otel_autoheal.errors import SourceMapError
from otel_autoheal.sourcemaps._store import Artifact

__all__ = ["BUNDLE_SUFFIXES", "DEBUG_ID_GLOBAL", "debug_id_text", "inject_debug_ids", "read_bundle_map", "scan_build"]

BUNDLE_SUFFIXES = (".js", ".mjs", ".cjs")
#: The global the injected snippet records Debug IDs in (stack text → Debug ID); the JS SDK reads it
#: and Sentry's ``_sentryDebugIds``, which Sentry's bundler plugins write in the same shape.
DEBUG_ID_GLOBAL = "_autohealDebugIds"
_MAPPING_URL = re.compile(rb"^[ \t]*//[#@][ \t]*sourceMappingURL=[ \t]*(\S+)[ \t]*$", re.M)
_DEBUG_ID = re.compile(rb"^[ \t]*//[#@][ \t]*debugId=[ \t]*([0-9A-Fa-f-]{32,36})[ \t]*$", re.M)
_SKIPPED_DIRS = frozenset({"node_modules", ".git"})


def _last(pattern: re.Pattern[bytes], code: bytes) -> str | None:
    found = None
    for match in pattern.finditer(code[-4096:] if len(code) > 4096 else code):
        found = match.group(1).decode("ascii", "replace")
    return found


def _map_json(path: Path, data: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SourceMapError(f"{path} is not a JSON source map: {exc}") from None
    if not isinstance(parsed, dict) or parsed.get("version") != 3 or not (
        isinstance(parsed.get("mappings"), str) or isinstance(parsed.get("sections"), list)
    ):
        raise SourceMapError(f"{path} is not a version 3 source map (needs \"version\": 3 and \"mappings\")")
    return parsed


def read_bundle_map(bundle: Path) -> tuple[Path, bytes] | None:
    """The source map of ``bundle`` (where it was found, and its bytes), or None without one."""
    code = bundle.read_bytes()
    reference = _last(_MAPPING_URL, code)
    if reference and reference.startswith("data:"):
        header, _, payload = reference.partition(",")
        data = base64.b64decode(payload) if header.endswith(";base64") else unquote(payload).encode()
        return bundle, data
    candidates = []
    if reference and "://" not in reference:
        candidates.append(bundle.parent / unquote(reference.split("?", 1)[0]))
    if reference:
        candidates.append(bundle.parent / Path(unquote(reference.split("?", 1)[0])).name)
    candidates.append(bundle.with_name(bundle.name + ".map"))
    for candidate in candidates:
        if candidate.is_file():
            return candidate, candidate.read_bytes()
    return None


def _fill_sources(map_path: Path, parsed: dict[str, Any]) -> bool:
    """Fill missing ``sourcesContent`` entries from the files next to the map; True when changed."""
    sources = parsed.get("sources")
    if not isinstance(sources, list):
        return False
    contents = parsed.get("sourcesContent")
    contents = list(contents) if isinstance(contents, list) else []
    contents += [None] * (len(sources) - len(contents))
    root = str(parsed.get("sourceRoot") or "")
    changed = False
    for index, source in enumerate(sources):
        if contents[index] is not None or not isinstance(source, str) or "://" in root + source:
            continue
        path = map_path.parent / (root.rstrip("/") + "/" + source if root else source)
        try:
            contents[index] = path.read_text(encoding="utf-8")
            changed = True
        except (OSError, UnicodeDecodeError):
            continue  # not every source is at hand (generated code, another machine's paths)
    if changed:
        parsed["sourcesContent"] = contents
    return changed


def debug_id_text(value: object) -> str | None:
    """A Debug ID in its canonical form (lower-case UUID with dashes), or None when it is none."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value.strip()[:36]))
    except ValueError:
        return None


def _url(prefix: str, relative: str) -> str:
    return prefix.rstrip("/") + "/" + relative if prefix else relative


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not _SKIPPED_DIRS.intersection(p.relative_to(root).parts))


def scan_build(root: Path, url_prefix: str = "~/") -> list[Artifact]:
    """Every bundle of ``root`` with a source map (and maps whose bundle is absent), as artifacts."""
    if not root.is_dir():
        raise SourceMapError(f"{root} is not a directory (give the build's output directory, e.g. dist/)")
    files = _files(root)
    artifacts: list[Artifact] = []
    used_maps: set[Path] = set()
    for bundle in (f for f in files if f.name.endswith(BUNDLE_SUFFIXES)):
        found = read_bundle_map(bundle)
        if found is None:
            continue
        map_path, data = found
        used_maps.add(map_path)
        parsed = _map_json(map_path, data)
        code = bundle.read_bytes()
        debug_id = debug_id_text(_last(_DEBUG_ID, code)) or debug_id_text(parsed.get("debugId") or parsed.get("debug_id"))
        if _fill_sources(map_path, parsed) or (debug_id and parsed.get("debugId") != debug_id):
            parsed["debugId"] = debug_id
            data = json.dumps(parsed, separators=(",", ":")).encode()
        artifacts.append(Artifact(_url(url_prefix, bundle.relative_to(root).as_posix()), data, code, debug_id))
    # Maps of bundles that are not in the directory (uploaded alone); CSS maps are no use here.
    map_names = tuple(suffix + ".map" for suffix in BUNDLE_SUFFIXES)
    for map_path in (f for f in files if f.name.endswith(map_names) and f not in used_maps):
        data = map_path.read_bytes()
        parsed = _map_json(map_path, data)
        if _fill_sources(map_path, parsed):
            data = json.dumps(parsed, separators=(",", ":")).encode()
        url = _url(url_prefix, map_path.relative_to(root).as_posix().removesuffix(".map"))
        artifacts.append(Artifact(url, data, None, debug_id_text(parsed.get("debugId") or parsed.get("debug_id"))))
    if not artifacts:
        raise SourceMapError(f"no source maps in {root} (build with source maps on, e.g. esbuild --sourcemap, "
                             "Vite build.sourcemap: true)")
    return artifacts


def _snippet(debug_id: str, with_comment: bool) -> bytes:
    """Records this file's Debug ID under the stack of an Error made here (its URL is in the stack)."""
    return (
        ';!function(){try{var g=typeof globalThis!="undefined"?globalThis:self,s=new Error().stack;'
        f's&&((g.{DEBUG_ID_GLOBAL}=g.{DEBUG_ID_GLOBAL}||{{}})[s]="{debug_id}")}}catch(e){{}}}}();\n'
        + (f"//# debugId={debug_id}\n" if with_comment else "")
    ).encode()


def _new_debug_id(code: bytes, map_json: bytes) -> str:
    digest = bytearray(hashlib.sha256(code + b"\0" + map_json).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x40  # a version-4 UUID, as other tools write
    digest[8] = (digest[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(digest)))


def inject_debug_ids(root: Path) -> list[tuple[Path, str]]:
    """Make every bundle of ``root`` that has a map register its Debug ID at run time; returns them.

    A bundle without an ID gets one derived from the bundle and map bytes (a rebuild of the same
    code gets the same one), the ``//# debugId=`` comment, and the map its ``debugId``. A bundle
    that has one (Rollup's ``sourcemapDebugIds``, webpack) but does not register it gets only the
    snippet. The additions go on new lines before the ``sourceMappingURL`` comment (or at the end),
    so every mapped line and column stays where the map says. Running it again changes nothing.
    """
    if not root.is_dir():
        raise SourceMapError(f"{root} is not a directory")
    done = []
    for bundle in (f for f in _files(root) if f.name.endswith(BUNDLE_SUFFIXES)):
        found = read_bundle_map(bundle)
        code = bundle.read_bytes()
        if found is None or DEBUG_ID_GLOBAL.encode() in code or b"_sentryDebugIds" in code:
            continue  # no map, or it registers its ID already
        map_path, data = found
        existing = debug_id_text(_last(_DEBUG_ID, code))
        if existing is None and map_path == bundle:
            continue  # an inline map: writing its debugId would mean re-encoding it inside the bundle
        parsed = _map_json(map_path, data) if existing is None else {}  # a broken map fails before any write
        debug_id = existing or _new_debug_id(code, data)
        matches = list(_MAPPING_URL.finditer(code))
        at = matches[-1].start() if matches else len(code)
        head = code[:at] if code[:at].endswith(b"\n") or not code[:at] else code[:at] + b"\n"
        bundle.write_bytes(head + _snippet(debug_id, with_comment=existing is None) + code[at:])
        if existing is None:
            parsed["debugId"] = debug_id
            map_path.write_text(json.dumps(parsed, separators=(",", ":")), encoding="utf-8")
        done.append((bundle, debug_id))
    return done
