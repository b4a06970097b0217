"""JavaScript source maps: uploads in the state database and frame resolution before grouping.

``otel-autoheal sourcemaps upload`` stores a build's maps (``_artifacts``, ``_store``); the
pipeline's ``Symbolicator`` (``_resolve``) turns minified frames into original ones.
"""

from __future__ import annotations

from otel_autoheal.sourcemaps._artifacts import DEBUG_ID_GLOBAL, inject_debug_ids, scan_build
from otel_autoheal.sourcemaps._resolve import DEBUG_IDS_ATTRIBUTE, Symbolicator, source_path
from otel_autoheal.sourcemaps._store import Artifact, StoredMap, delete_release, list_maps, save_artifacts

__all__ = [
    "DEBUG_IDS_ATTRIBUTE",
    "DEBUG_ID_GLOBAL",
    "Artifact",
    "StoredMap",
    "Symbolicator",
    "delete_release",
    "inject_debug_ids",
    "list_maps",
    "save_artifacts",
    "scan_build",
    "source_path",
]
