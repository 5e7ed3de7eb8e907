"""Validate simulator responses against eBay's official OpenAPI 3 schemas (copied into tests/ebay_specs).

OAS 3.0 schema objects are close to JSON Schema draft 4/5 but not equal; :func:`to_jsonschema` converts:

* ``nullable: true`` -> the type also allows ``null``;
* OAS-only keywords (``example``, ``xml``, ``externalDocs``, ``discriminator``, ``readOnly``, ``writeOnly``,
  ``deprecated``, ``x-*``) are dropped;
* ``format: int32/int64`` become numeric bounds (jsonschema ignores unknown formats);
* strict mode (default): every object schema that lists ``properties`` and says nothing about
  ``additionalProperties`` gets ``additionalProperties: false``, so a field name the spec does not know
  (a typo, or a field of a newer API version) fails the test.  eBay's schemas declare no ``required`` or
  ``enum`` lists, so without strict mode nearly anything would validate.

``$ref`` (``#/components/...``) is resolved by jsonschema against a root document holding the converted
``components`` of the spec.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SPEC_DIR = Path(__file__).resolve().parent.parent / "ebay_specs"
SPECS = {
    "fulfillment": "sell_fulfillment_v1_oas3.json",
    "finances": "sell_finances_v1_oas3.yaml",
    "message": "commerce_message_v1_oas3.json",
    "inventory": "sell_inventory_v1_oas3.json",
    "feed": "sell_feed_v1_oas3.json",
    "analytics": "developer_analytics_v1_beta_oas3.json",
}
OAS_ONLY = {"example", "examples", "xml", "externalDocs", "discriminator", "readOnly", "writeOnly", "deprecated",
            "nullable", "description"}
INT_BOUNDS = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@lru_cache(maxsize=None)
def load_spec(name: str) -> dict[str, Any]:
    path = SPEC_DIR / SPECS[name]
    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)


def to_jsonschema(node: Any, strict: bool = True) -> Any:
    if isinstance(node, list):
        return [to_jsonschema(x, strict) for x in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return {"$ref": node["$ref"]}
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k in OAS_ONLY or k.startswith("x-"):
            continue
        if k == "properties" and isinstance(v, dict):
            out[k] = {pk: to_jsonschema(pv, strict) for pk, pv in v.items()}
        elif k in ("items", "additionalProperties", "not") and isinstance(v, dict):
            out[k] = to_jsonschema(v, strict)
        elif k in ("allOf", "anyOf", "oneOf"):
            out[k] = [to_jsonschema(x, strict) for x in v]
        else:
            out[k] = v
    fmt = node.get("format")
    if node.get("type") == "integer" and fmt in INT_BOUNDS:
        out.setdefault("minimum", INT_BOUNDS[fmt][0])
        out.setdefault("maximum", INT_BOUNDS[fmt][1])
    if node.get("nullable") and "type" in out:
        t = out["type"]
        out["type"] = [t, "null"] if isinstance(t, str) else [*t, "null"]
    if strict and "properties" in out and "additionalProperties" not in node \
            and node.get("type", "object") == "object" and not any(k in node for k in ("allOf", "anyOf", "oneOf")):
        out["additionalProperties"] = False
    return out


@lru_cache(maxsize=None)
def _components(name: str, strict: bool) -> dict[str, Any]:
    comps = load_spec(name).get("components", {})
    return {"schemas": {n: to_jsonschema(s, strict) for n, s in comps.get("schemas", {}).items()}}


def response_schema(name: str, path: str, method: str = "get", status: str = "200") -> dict[str, Any]:
    """The (unconverted) schema of ``method path`` -> ``status`` application/json in spec ``name``."""
    op = load_spec(name)["paths"][path][method]
    content = op["responses"][status]["content"]
    return content["application/json"]["schema"]


@lru_cache(maxsize=None)
def validator(name: str, path: str, method: str = "get", status: str = "200", strict: bool = True):
    schema = to_jsonschema(response_schema(name, path, method, status), strict)
    root = {**schema, "components": _components(name, strict)}
    cls = jsonschema.validators.validator_for({"$schema": "http://json-schema.org/draft-07/schema#"})
    return cls(root)


def validate_response(name: str, path: str, body: Any, method: str = "get", status: str = "200",
                      strict: bool = True) -> None:
    """Raise AssertionError listing every schema violation of ``body``."""
    v = validator(name, path, method, status, strict)
    errors = sorted(v.iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in errors[:20]]
        raise AssertionError(f"{name} {method.upper()} {path} -> {status}: {len(errors)} schema error(s):\n"
                             + "\n".join(lines))
    check_timestamps(body)


def error_schema(name: str = "fulfillment", strict: bool = True):
    """Validator of the eBay error envelope ``{"errors": [Error], "warnings": [Error]}`` of a spec."""
    comps = _components(name, strict)
    err_name = "Error" if "Error" in comps["schemas"] else "ErrorDetailV3"
    schema = {"type": "object", "additionalProperties": False, "required": ["errors"],
              "properties": {"errors": {"type": "array", "minItems": 1,
                                        "items": {"$ref": f"#/components/schemas/{err_name}"}},
                             "warnings": {"type": "array", "items": {"$ref": f"#/components/schemas/{err_name}"}}}}
    cls = jsonschema.validators.validator_for({"$schema": "http://json-schema.org/draft-07/schema#"})
    return cls({**schema, "components": comps})


def validate_error(body: Any, name: str = "fulfillment") -> None:
    errors = list(error_schema(name).iter_errors(body))
    assert not errors, [e.message for e in errors]
    for e in body["errors"]:
        for key in ("errorId", "domain", "category", "message"):
            assert key in e, f"error envelope lacks {key}: {e}"


def check_timestamps(obj: Any, path: str = "") -> None:
    """Every ``...Date`` / ``...date`` string field is ``YYYY-MM-DDTHH:MM:SS.sssZ``."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, str) and (k.endswith("Date") or k in ("date", "reset")):
                assert TS_RE.match(v), f"{path}/{k}: bad timestamp {v!r}"
            else:
                check_timestamps(v, f"{path}/{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            check_timestamps(v, f"{path}/{i}")
