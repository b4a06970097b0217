"""Frame paths → the project-relative part that goes into a grouping key.

The same code deployed twice must give the same key, so everything a deployment adds to a path
is removed before the last few components are kept: release folders (``releases/2026.11.28-1/``)
and the ``current`` symlink that points at one, container storage (``…/overlay2/<id>/merged/``)
and well-known container roots (``/app/``, ``/usr/src/app/``), version or content-hash folders,
package-manager store paths (``node_modules/.pnpm/<name>@<version>/node_modules/<name>/``,
Go's ``<module>@v1.2.3``, ``gems/<name>-<version>``), virtualenv and interpreter prefixes, URL
origins, query strings and Windows drive letters.
"""

from __future__ import annotations

import re

from otel_autoheal.group.inapp import path_segments

__all__ = ["PATH_COMPONENTS_KEPT", "project_relative"]

#: Path components kept from an application path: enough to tell files apart, few enough that a
#: checkout in another directory or machine gives the same key.
PATH_COMPONENTS_KEPT = 3

#: A folder named like this holds one folder per deployed release (Capistrano, Deployer, Envoyer…).
_RELEASE_PARENTS = frozenset({"releases", "deploys", "deployments"})
#: A folder that is (or resolves from) the active release, or the root of a container's filesystem.
_ROOT_MARKERS = frozenset({"current", "rootfs"})
#: Container storage: ``overlay2/<layer id>/merged|diff/`` and ``/proc/<pid>/root/``.
_LAYER_STORES = frozenset({"overlay", "overlay2", "overlayfs", "fuse-overlayfs", "proc"})
#: Leading folders of common container images and hosting platforms that say nothing about the code.
_CONTAINER_ROOTS: tuple[tuple[str, ...], ...] = (
    ("usr", "src", "app"), ("home", "site", "wwwroot"), ("var", "task"), ("var", "www", "html"),
    ("opt", "app"), ("srv", "app"), ("app",), ("workspace",), ("workspaces",), ("code",),
)
#: Folder names that are versions, dates, build numbers or commit hashes, not code structure.
_VERSIONISH = re.compile(
    r"^(?:v?\d+\.\d+\.\d+(?:[-+.][\w.\-+]*)?"  # 1.2.3, v2.0.0-rc1
    r"|\d{4}[-._]?\d{2}[-._]?\d{2}(?:[-._T]?[\w.\-]*)?"  # 2026.11.28-1, 20261128123456
    r"|\d{8,}"  # build numbers, timestamps
    r"|(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,64})$",  # commit or image hashes
    re.I,
)
_AT_VERSION = re.compile(r"@v?\d[\w.\-+]*$")
_GEM_VERSION = re.compile(r"-\d+(?:\.\d+)+(?:[.\-][\w.]+)?$")
_CONTENT_HASH = re.compile(r"[.\-_][0-9a-f]{6,}(?=[.\-_])|[.\-_][0-9A-Za-z_\-]{8}(?=\.(?:m?js|css)$)")
_PY_STDLIB = re.compile(r"^(?:python|pypy)\d+(?:\.\d+)?t?$", re.I)


def _after_last(segments: list[str], names: frozenset[str]) -> int:
    """Index just past the last segment in ``names`` (0 when there is none)."""
    for index in range(len(segments) - 2, -1, -1):
        if segments[index] in names:
            return index + 1
    return 0


def _library_relative(segments: list[str]) -> list[str] | None:
    """Paths inside dependency folders keep the folder kind and the package's own path."""
    for index in range(len(segments) - 2, -1, -1):
        part = segments[index]
        if part in ("site-packages", "dist-packages", "node_modules"):
            return [part, *segments[index + 1:]]
        if part == "mod" and index and segments[index - 1] == "pkg":  # Go module cache
            return ["pkg/mod", *segments[index + 1:]]
        if part == "gems" and index + 1 < len(segments) - 1:
            return ["gems", _GEM_VERSION.sub("", segments[index + 1]), *segments[index + 2:]]
        if part.lower() in ("lib", "lib64") and _PY_STDLIB.match(segments[index + 1]):
            return ["stdlib", *segments[index + 2:]]
    return None


def project_relative(filename: str) -> str:
    """The part of ``filename`` that names the file inside its project, stable across deployments."""
    segments = path_segments(filename)
    library = _library_relative(segments)
    if library is not None:
        segments = [_AT_VERSION.sub("", part) for part in library]
    else:
        for index in range(len(segments) - 2, -1, -1):
            if segments[index] in _RELEASE_PARENTS and index + 2 < len(segments):
                segments = segments[index + 2:]
                break
        segments = segments[_after_last(segments, _ROOT_MARKERS):]
        for index in range(len(segments) - 3, -1, -1):
            if segments[index] in _LAYER_STORES and segments[index + 2] in ("merged", "diff", "root"):
                segments = segments[index + 3:]
                break
        for root in _CONTAINER_ROOTS:
            if tuple(segments[: len(root)]) == root and len(segments) > len(root):
                segments = segments[len(root):]
                break
        segments = [_AT_VERSION.sub("", part) for part in segments]
        # A version, date or hash folder is a deployment's root (…/builds/3f9a1c2/shop/cart.py).
        for index in range(len(segments) - 2, -1, -1):
            if _VERSIONISH.match(segments[index]):
                segments = segments[index + 1:]
                break
        segments = segments[-PATH_COMPONENTS_KEPT:]
    name = "/".join(segments)
    return _CONTENT_HASH.sub("", name)
