"""Validate requests and responses of the stand-in against GitHub's official OpenAPI description.

The description comes from the npm package ``@octokit/openapi`` pinned in ``package.json`` next to
this file (``npm ci --prefix tests/github_standin``). It is OpenAPI 3.0.3: ``nullable`` is turned
into JSON Schema ``null`` types once at load, then every schema is checked with ``jsonschema``'s
Draft 4 validator through a ``referencing`` registry holding the whole document, so ``$ref`` into
``#/components/...`` resolves without dereferencing the 13 MB file.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import referencing.jsonschema

__all__ = ["OpenAPIDescription", "Operation", "load_description", "spec_path"]

_HERE = Path(__file__).resolve().parent
_SPEC_URI = "urn:github-openapi"
_INSTALL_HINT = "run `npm ci --prefix tests/github_standin` to install @octokit/openapi"


def spec_path() -> Path:
    """Where the pinned api.github.com description lives (env GITHUB_OPENAPI_SPEC overrides)."""
    override = os.environ.get("GITHUB_OPENAPI_SPEC")
    if override:
        return Path(override)
    return _HERE / "node_modules" / "@octokit" / "openapi" / "generated" / "api.github.com.json"


def _to_json_schema(node: Any) -> Any:
    """Rewrite OpenAPI 3.0 ``nullable`` into JSON Schema, recursively."""
    if isinstance(node, list):
        return [_to_json_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_json_schema(v) for k, v in node.items()}
    if out.pop("nullable", False) is True:
        if "type" in out:
            t = out["type"]
            out["type"] = [*t, "null"] if isinstance(t, list) else [t, "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        elif any(k in out for k in ("oneOf", "anyOf", "allOf", "$ref")):
            out = {"anyOf": [{"type": "null"}, out]}
    return out


@dataclass(frozen=True)
class Operation:
    """One (method, path template) of the description."""

    method: str
    template: str
    spec: dict[str, Any]
    pointer: str  # JSON pointer of the operation object


class OpenAPIDescription:
    """The loaded description, with a path router and cached validators."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = _to_json_schema(document)
        resource = referencing.Resource.from_contents(
            self.document, default_specification=referencing.jsonschema.DRAFT4
        )
        self.registry: referencing.Registry[Any] = referencing.Registry().with_resource(_SPEC_URI, resource)
        self._routes: list[tuple[re.Pattern[str], str, dict[str, Any]]] = []
        for template, item in self.document["paths"].items():
            regex = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template)) + "$"
            self._routes.append((re.compile(regex), template, item))
        # Literal segments beat parameters: "/repos/{o}/{r}/issues/comments" vs ".../issues/{n}".
        self._routes.sort(key=lambda r: r[1].count("{"))
        self._lock = threading.Lock()
        self._validators: dict[str, jsonschema.protocols.Validator] = {}

    def operation(self, method: str, path: str) -> Operation | None:
        for regex, template, item in self._routes:
            if regex.match(path) and method.lower() in item:
                ptr = "/paths/" + template.replace("~", "~0").replace("/", "~1") + "/" + method.lower()
                return Operation(method.upper(), template, item[method.lower()], ptr)
        return None

    def _validator(self, pointer: str) -> jsonschema.protocols.Validator:
        with self._lock:
            v = self._validators.get(pointer)
            if v is None:
                v = jsonschema.Draft4Validator({"$ref": f"{_SPEC_URI}#{pointer}"}, registry=self.registry)
                self._validators[pointer] = v
            return v

    def _errors(self, pointer: str, instance: Any) -> list[str]:
        errors = sorted(self._validator(pointer).iter_errors(instance), key=lambda e: list(e.absolute_path))
        out = []
        for e in errors[:5]:
            where = "/".join(str(p) for p in e.absolute_path) or "<root>"
            out.append(f"{where}: {e.message[:300]}")
        return out

    def validate_request(
        self, op: Operation, query: dict[str, list[str]], body: Any, has_body: bool
    ) -> list[str]:
        """Problems with a request's query parameters and JSON body (empty list when valid)."""
        problems: list[str] = []
        params = [self._deref(p) for p in op.spec.get("parameters", [])]
        known = {p["name"] for p in params if p.get("in") == "query"}
        for name, values in query.items():
            if name not in known:
                problems.append(f"query parameter {name!r} is not in the description")
                continue
            p = next(p for p in params if p.get("in") == "query" and p["name"] == name)
            schema = p.get("schema", {})
            for raw in values:
                value = _coerce(raw, schema.get("type"))
                errs = list(jsonschema.Draft4Validator(schema, registry=self.registry).iter_errors(value))
                if errs:
                    problems.append(f"query {name}={raw!r}: {errs[0].message[:200]}")
        for p in params:
            if p.get("in") == "query" and p.get("required") and p["name"] not in query:
                problems.append(f"required query parameter {p['name']!r} missing")
        rb = op.spec.get("requestBody")
        if rb is not None:
            rb = self._deref(rb)
            if has_body:
                if "application/json" not in rb.get("content", {}):
                    problems.append("request has a JSON body but the operation takes none")
                else:
                    ptr = op.pointer + "/requestBody/content/application~1json/schema"
                    if "$ref" in op.spec["requestBody"]:
                        ptr = op.spec["requestBody"]["$ref"][1:] + "/content/application~1json/schema"
                    problems += [f"request body {e}" for e in self._errors(ptr, body)]
            elif rb.get("required"):
                problems.append("request body required but missing")
        return problems

    def validate_response(self, op: Operation, status: int, body: Any) -> list[str]:
        """Problems with a response status and JSON body (empty list when valid)."""
        responses = op.spec.get("responses", {})
        key = str(status)
        if key not in responses:
            return [f"status {status} is not documented for {op.method} {op.template}"]
        resp = responses[key]
        base = op.pointer + "/responses/" + key
        if "$ref" in resp:
            base = resp["$ref"][1:]
            resp = self._deref(resp)
        content = resp.get("content", {})
        if "application/json" not in content:
            return [] if body is None else [f"status {status} has no JSON body in the description"]
        if "schema" not in content["application/json"]:
            return []
        return [f"response {e}" for e in self._errors(base + "/content/application~1json/schema", body)]

    def _deref(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.document
            for part in node["$ref"][2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node


def _coerce(raw: str, typ: Any) -> Any:
    if typ == "integer":
        try:
            return int(raw)
        except ValueError:
            return raw
    if typ == "boolean":
        return {"true": True, "false": False}.get(raw, raw)
    if typ == "number":
        try:
            return float(raw)
        except ValueError:
            return raw
    if typ == "array":
        return raw.split(",")
    return raw


@functools.lru_cache(maxsize=1)
def load_description() -> OpenAPIDescription:
    """Load (once per process) the pinned description; fails with the install hint when absent."""
    path = spec_path()
    if not path.is_file():
        raise FileNotFoundError(f"GitHub OpenAPI description not found at {path}: {_INSTALL_HINT}")
    with path.open("rb") as fh:
        return OpenAPIDescription(json.load(fh))
