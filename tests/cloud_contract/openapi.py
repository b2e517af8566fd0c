"""Check recorded exchanges with cloudsim against a provider's published OpenAPI document (OAS 3.0).

One table per document maps (method, path template) to its operation, so any path cloudsim serves or an adapter calls
is checked, including paths added later; a request to a path or method the document lacks is a finding. Each problem
is a `Finding` with a stable `problem` text, so a known deviation can be listed once with its reason.

Stricter than the schemas in one way, on purpose: a response object carrying a property its schema does not name is a
finding (`undocumented field`), because cloudsim inventing fields is exactly how it drifts from the real API.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from jsonschema.exceptions import ValidationError, best_match
from openapi_schema_validator import OAS30ReadValidator, OAS30Validator, OAS30WriteValidator, oas30_format_checker

SPECS = Path(__file__).parent / "specs"
# Where each provider's API sits in cloudsim: `/<provider>` then the path of the document's server URL.
METHODS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Exchange:
    """One line of cloudsim's `--record` file."""

    method: str
    path: str
    query: str
    request_body: str
    status: int
    headers: dict[str, str]
    body: str
    complete: bool

    @classmethod
    def from_line(cls, line: str) -> Exchange:
        raw = json.loads(line)
        return cls(
            method=raw["method"],
            path=raw["path"],
            query=raw["query"],
            request_body=raw["request_body"],
            status=raw["status"],
            headers={k.lower(): v for k, v in raw["headers"]},
            body=raw["body"],
            complete=raw["complete"],
        )

    @property
    def provider(self) -> str:
        return self.path.split("/")[1]


@dataclass(frozen=True)
class Finding:
    provider: str
    operation: str  # "GET /servers/{id}", or the raw path when no operation matches
    problem: str  # stable text, the key of a known deviation
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.provider} {self.operation}: {self.problem}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    pattern: re.Pattern[str]
    spec: dict[str, Any]
    parameters: dict[tuple[str, str], dict[str, Any]]  # (in, name) -> parameter object

    @property
    def key(self) -> str:
        return f"{self.method.upper()} {self.template}"


class Document:
    """`conditional_headers`: documented response headers that are sent only when they apply (a next-page link)."""

    def __init__(self, provider: str, conditional_headers: frozenset[str] = frozenset()) -> None:
        self.provider = provider
        self.conditional_headers = conditional_headers
        self.spec: dict[str, Any] = json.loads((SPECS / f"{provider}.openapi.json").read_text())
        server_path = urlparse(self.spec["servers"][0]["url"]).path.rstrip("/")
        self.prefix = f"/{provider}{server_path}"
        self.operations: list[Operation] = []
        for template, item in self.spec["paths"].items():
            shared = {(p["in"], p["name"]): p for p in item.get("parameters", [])}
            for method in METHODS:
                if method not in item:
                    continue
                op = item[method]
                params = {**shared, **{(p["in"], p["name"]): p for p in op.get("parameters", [])}}
                regex = re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template))
                self.operations.append(Operation(method, template, re.compile(f"^{regex}$"), op, params))
        # A literal segment wins over a parameter (`/droplets/actions` before `/droplets/{droplet_id}`).
        self.operations.sort(key=lambda o: -sum(1 for s in o.template.split("/") if s and not s.startswith("{")))

    def doc_path(self, path: str) -> str:
        """cloudsim's path as the document writes it, without a trailing slash (python-digitalocean's `droplets/`)."""
        rest = path.removeprefix(self.prefix)
        return rest.rstrip("/") or "/"

    def match(self, method: str, path: str) -> Operation | None:
        doc_path = self.doc_path(path)
        for op in self.operations:
            if op.method == method.lower() and op.pattern.match(doc_path):
                return op
        return None

    def path_params(self, op: Operation, path: str) -> dict[str, str]:
        found = op.pattern.match(self.doc_path(path))
        return dict(zip(re.findall(r"\{([^}]+)\}", op.template), found.groups(), strict=True)) if found else {}

    # --- requests ---------------------------------------------------------------------------------------------------

    def _unknown(self, ex: Exchange) -> list[Finding]:
        return [Finding(self.provider, f"{ex.method} {self.doc_path(ex.path)}", "operation not in the document")]

    def check_request(self, ex: Exchange) -> list[Finding]:
        op = self.match(ex.method, ex.path)
        if op is None:
            return self._unknown(ex)
        found: list[Finding] = []

        def finding(problem: str, detail: str = "") -> None:
            found.append(Finding(self.provider, op.key, problem, detail))

        for name, raw in self.path_params(op, ex.path).items():
            param = op.parameters.get(("path", name))
            if param is None:
                finding(f"path parameter {name} not documented")
                continue
            for error in _errors("plain", param.get("schema", {}), _coerce(raw, param.get("schema", {}))):
                finding(f"path parameter {name} invalid", error)
        query = parse_qs(ex.query, keep_blank_values=True)
        for name, values in query.items():
            param = op.parameters.get(("query", name))
            if param is None:
                finding(f"query parameter {name} not documented")
                continue
            schema = param.get("schema", {})
            if schema.get("type") == "array":
                value: Any = [_coerce(v, schema.get("items", {})) for v in values]
            elif len(values) > 1:
                finding(f"query parameter {name} repeated", f"{len(values)} values")
                continue
            else:
                value = _coerce(values[0], schema)
            for error in _errors("plain", schema, value):
                finding(f"query parameter {name} invalid", error)
        for (where, name), param in op.parameters.items():
            if where == "query" and param.get("required") and name not in query:
                finding(f"query parameter {name} missing")
        body_spec = op.spec.get("requestBody")
        if not ex.request_body.strip():
            if body_spec and body_spec.get("required"):
                finding("request body missing")
            return found
        if body_spec is None:
            finding("request body not documented")
            return found
        schema = body_spec.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            finding("JSON request body not documented")
            return found
        try:
            body = json.loads(ex.request_body)
        except ValueError:
            finding("request body is not JSON")
            return found
        for error in _errors("write", schema, body):
            finding("request body does not match the schema", error)
        return found

    # --- responses --------------------------------------------------------------------------------------------------

    def check_response(self, ex: Exchange) -> list[Finding]:
        op = self.match(ex.method, ex.path)
        if op is None:
            return self._unknown(ex)
        found: list[Finding] = []

        def finding(problem: str, detail: str = "") -> None:
            found.append(Finding(self.provider, op.key, problem, detail))

        if not ex.complete:
            return found  # an answer cut short on purpose (a dropped create): nothing arrived to check
        responses: dict[str, Any] = op.spec.get("responses", {})
        keys = {k.upper(): k for k in responses}
        chosen = keys.get(str(ex.status)) or keys.get(f"{ex.status // 100}XX") or keys.get("DEFAULT")
        if chosen is None:
            finding(f"status {ex.status} not documented", f"documented: {', '.join(responses)}")
            return found
        response = responses[chosen]
        for name, header in response.get("headers", {}).items():
            value = ex.headers.get(name.lower())
            if value is None:
                if name.lower() not in self.conditional_headers:
                    finding(f"header {name} missing")
                continue
            for error in _errors("plain", header.get("schema", {}), _coerce(value, header.get("schema", {}))):
                finding(f"header {name} invalid", error)
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            if response.get("content") is None and ex.status == 204 and ex.body:
                finding("body on a response documented without one")
            return found  # the document says nothing about this answer's body
        try:
            body = json.loads(ex.body)
        except ValueError:
            finding("response body is not JSON", ex.body[:80])
            return found
        for error in _errors("read", schema, body):
            finding("response body does not match the schema", error)
        for field in undocumented(body, schema, "$"):
            finding("undocumented field", field)
        return found


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    """A path, query or header value as the type its schema names (strings stay strings when they do not parse)."""
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value


# "read": a response (writeOnly properties absent), "write": a request body (readOnly ones absent), "plain": a value.
_VALIDATORS: dict[str, Any] = {"read": OAS30ReadValidator, "write": OAS30WriteValidator, "plain": OAS30Validator}


@cache
def _validator(kind: str, schema_json: str) -> Any:
    return _VALIDATORS[kind](json.loads(schema_json), format_checker=oas30_format_checker)


def _errors(kind: str, schema: dict[str, Any], instance: Any) -> Iterator[str]:
    validator = _validator(kind, json.dumps(schema, sort_keys=True))
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        yield _describe(error)


def _describe(error: ValidationError) -> str:
    if error.context:  # a oneOf/anyOf: the branch error that explains most, not the whole instance
        error = best_match(error.context) or error
    where = "$" + "".join(f"[{p!r}]" for p in error.absolute_path)
    return f"{where}: {error.message[:200]}"


def undocumented(instance: Any, schema: dict[str, Any], where: str) -> list[str]:
    """Paths of object properties in `instance` that no (sub)schema of `schema` names."""
    if isinstance(instance, list):
        items = [s["items"] for s in _branches(schema) if isinstance(s.get("items"), dict)]
        return [f for i, v in enumerate(instance) for sub in items for f in undocumented(v, sub, f"{where}[{i}]")]
    if not isinstance(instance, dict):
        return []
    branches = _branches(schema)
    if any(s.get("additionalProperties") not in (None, False) for s in branches):
        return []  # a map (labels, details): any key is documented
    props: dict[str, list[dict[str, Any]]] = {}
    for s in branches:
        for name, sub in s.get("properties", {}).items():
            props.setdefault(name, []).append(sub)
    if not props:
        return []  # a free-form object
    found = [f"{where}.{k}" for k in instance if k not in props]
    for k, v in instance.items():
        for sub in props.get(k, []):
            found += undocumented(v, sub, f"{where}.{k}")
    return sorted(set(found))


def _branches(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The schema and every allOf/oneOf/anyOf part of it, recursively."""
    out = [schema]
    for key in ("allOf", "oneOf", "anyOf"):
        for part in schema.get(key, []):
            out += _branches(part)
    return out
