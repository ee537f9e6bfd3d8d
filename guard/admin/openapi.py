"""``/openapi.json``: the admin API described from its own route table and body models.

>>> from guard.admin.app import ROUTES
>>> doc = document(ROUTES)
>>> doc["openapi"], sorted(doc["paths"]["/v1/sandboxes"])
('3.1.0', ['get', 'post'])
>>> "CreateSandbox" in doc["components"]["schemas"]
True
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel

from guard import __version__


class Op(Protocol):
    """What the document reads of an operation (guard.admin.app.Op is one)."""

    @property
    def method(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def body(self) -> type[BaseModel] | None: ...
    @property
    def status(self) -> int: ...
    @property
    def query(self) -> tuple[tuple[str, str, str], ...]: ...

REF = "#/components/schemas/{model}"
ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["type", "message"], "properties": {
        "type": {"type": "string", "enum": ["invalid_request", "unauthorized", "not_found",
                                            "conflict", "payload_too_large",
                                            "unsupported_media_type", "method_not_allowed",
                                            "unavailable", "internal_error"]},
        "message": {"type": "string"}}}}}


def document(ops: Sequence[Op]) -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": ERROR}
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in re.findall(r"{(\w+)}", op.path)]
        params += [{"name": n, "in": "query", "required": False,
                    "schema": {"type": t}, "description": d} for n, t, d in op.query]
        entry: dict[str, Any] = {
            "operationId": op.name, "summary": op.summary, "parameters": params,
            "responses": {
                str(op.status): {"description": "success", "content": {
                    "text/event-stream" if op.name == "streamEvents" else "application/json":
                    {"schema": {"type": "object"}}}},
                "default": {"description": "an error", "content": {"application/json": {
                    "schema": {"$ref": REF.format(model="Error")}}}},
            },
        }
        if op.body is not None:
            schema = op.body.model_json_schema(by_alias=True, ref_template=REF)
            schemas.update(schema.pop("$defs", {}))
            schemas[op.body.__name__] = schema
            entry["requestBody"] = {"required": False, "content": {"application/json": {
                "schema": {"$ref": REF.format(model=op.body.__name__)}}}}
        elif op.name == "putSnapshot":
            entry["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"type": "object", "required": ["v", "collections"]}}}}
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "guard admin API", "version": __version__,
                 "description": "Create, fork, snapshot, restore, reset, diff and delete "
                 "sandbox worlds of a running guard."},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"}}},
    }
