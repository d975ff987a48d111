"""OpenAPI 3.0 spelling of optional fields (BentoML serves an OpenAPI 3.0 document).

Pydantic writes `X | None` as `anyOf: [X, {type: null}]` (JSON Schema); OpenAPI 3.0 has no null
type and BentoML, when it inlines a body schema, keeps only the first `anyOf` branch, so a
nullable field would be documented as never null. `nullable_fields` rewrites each such property
as `X` plus `nullable: true` (a bare `$ref` as `allOf: [$ref]`, the 3.0 idiom). Used as
`json_schema_extra` of the service's contract models.
"""

from __future__ import annotations

from typing import Any

_NULL = {"type": "null"}


def nullable_30(prop: dict[str, Any]) -> dict[str, Any]:
    """One property schema, `anyOf: [X, null]` -> `X, nullable: true`; others unchanged."""
    branches = prop.get("anyOf")
    if not isinstance(branches, list) or _NULL not in branches or len(branches) != 2:
        return prop
    (kept,) = [b for b in branches if b != _NULL]
    rest = {k: v for k, v in prop.items() if k != "anyOf"}
    if "$ref" in kept:
        kept = {"allOf": [kept]}
    return {**kept, **rest, "nullable": True}


def nullable_fields(schema: dict[str, Any], cls: Any = None) -> None:
    """`json_schema_extra` hook: rewrite every nullable property of a model schema in place."""
    for name, prop in schema.get("properties", {}).items():
        schema["properties"][name] = nullable_30(prop)
