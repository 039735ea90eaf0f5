"""The OpenAPI 3.1 document, built from the routes the app really serves."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from isolation_harness.reference_app.app_keys import ROUTES
from isolation_harness.reference_app.http_api import IDEMPOTENCY_HEADER
from isolation_harness.reference_app.settings import AppSettings

_ERROR = {"$ref": "#/components/schemas/Error"}


def document(app: web.Application, settings: AppSettings) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {
        "Error": {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {k: {"type": "string"} for k in
                                   ("code", "message", "service", "request_id")},
                    "required": ["code", "message", "service", "request_id"],
                }
            },
        }
    }  # fmt: skip
    body_models: dict[str, type] = {}
    for route in app[ROUTES]:
        operation: dict[str, Any] = {
            "summary": route.summary,
            "tags": [route.tag],
            "operationId": f"{route.method.lower()}_{route.handler.__name__}",
            "responses": {
                str(status): {"description": text} for status, text in route.responses.items()
            },
        }
        operation["responses"].setdefault("200", {"description": "OK"})
        operation["responses"]["default"] = {
            "description": "error",
            "content": {"application/json": {"schema": _ERROR}},
        }
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _path_parameters(route.path)
        ]
        if route.idempotent:
            parameters.append(
                {"name": IDEMPOTENCY_HEADER, "in": "header", "required": True,
                 "schema": {"type": "string", "maxLength": 128}}
            )  # fmt: skip
        if parameters:
            operation["parameters"] = parameters
        if route.auth in {"user", "admin"}:
            operation["security"] = [{"bearer": []}]
        if route.body is not None:
            name = route.body.__name__
            if name in body_models and body_models[name] is not route.body:
                raise ValueError(f"two request bodies are named {name}: rename one")
            body_models[name] = route.body
            schemas[name] = route.body.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}
                },
            }
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "reference_app",
            "version": "1",
            "description": f"Reference crypto exchange ({settings.architecture} design). "
            "Amounts are decimal strings.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _path_parameters(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]
