"""The OpenAPI 3.1 document, built from the routes the app really serves.

It tells the truth about what the app accepts and answers: each body's currencies and
amounts per currency, the parameters' ranges, the Idempotency-Key's characters, every status
an operation can answer with its error body, and the rules no schema can express (the only
400s a request the document calls valid may get). ``tests/api/test_openapi_properties.py``
holds the app to it with requests generated from this document.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from isolation_harness.reference_app.api_schema import UUID_SCHEMA, Schema
from isolation_harness.reference_app.app_keys import ROUTES
from isolation_harness.reference_app.http_api import (
    IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY_PATTERN,
    Route,
)
from isolation_harness.reference_app.settings import AppSettings

_ERROR = {"$ref": "#/components/schemas/Error"}
_UNAVAILABLE = {"$ref": "#/components/schemas/Unavailable"}

#: the ``code`` of a 503, and what it means: the service named in the error failed
UNAVAILABLE_CODES: Mapping[str, str] = {
    "timeout": "the service's work did not end within its time limit",
    "pool_timeout": "no connection of the service's pool came free in time",
    "statement_timeout": "the database cancelled a statement that ran too long",
    "database_unavailable": "the service's database could not be reached or went away",
    "database_error": "the service's database refused the work",
    "calculation_failed": "a decimal operation of the service failed",
    "service_broken": "the service was broken on purpose (fault API)",
    "service_failed": "the service's own work failed",
    "dependency_unavailable": "something the service needs failed",
    "provider_unavailable": "the payment provider did not answer",
    "price_unavailable": "no price for the pair could be had",
    "price_source_unavailable": "the price source did not answer",
    "stale_price": "the latest price is too old (or dated in the future)",
}

#: what each error status means, whatever the operation
_ERROR_TEXT: Mapping[int, str] = {
    400: "the request is malformed: the error's message names the field",
    401: "no valid credentials",
    403: "credentials of the wrong kind (the admin token on a user's route, or a user's on "
    "the admin's), or not allowed on this resource",
    404: "no such resource (or someone else's)",
    409: "the resource's state does not allow it",
    410: "gone (expired)",
    413: "the body is too large",
    502: "the provider refused the request",
    503: "the service named in the error is unavailable: see the error's code",
}


def document(app: web.Application, settings: AppSettings) -> dict[str, Any]:
    currencies = settings.currencies
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = _error_schemas()
    for route in app[ROUTES]:
        operation: dict[str, Any] = {
            "summary": route.summary,
            "tags": [route.tag],
            "operationId": f"{route.method.lower()}_{route.handler.__name__}",
            "responses": _responses(route),
        }
        if route.rules:
            operation["description"] = (
                "Rules the schema cannot express (answered 400 with "
                "the code):\n" + "\n".join(f"- `{c}`: {r}" for c, r in route.rules.items())
            )
            operation["x-rules"] = dict(route.rules)
        parameters = _parameters(route, currencies)
        if parameters:
            operation["parameters"] = parameters
        if route.auth in {"user", "admin"}:
            operation["security"] = [{"bearer": []}]
        body = _body(route, currencies)
        if body is not None:
            for name, schema in body.pop("$defs", {}).items():  # a model's enums, e.g.
                if schemas.setdefault(name, schema) != schema:
                    raise ValueError(f"two schemas are named {name}: rename one")
            name = route.body.__name__ if route.body is not None else route.handler.__name__
            if schemas.get(name, body) != body:
                raise ValueError(f"two request bodies are named {name}: rename one")
            schemas[name] = body
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


def _error_schemas() -> dict[str, Schema]:
    def error(code: Schema) -> Schema:
        fields: dict[str, Schema] = {k: {"type": "string"} for k in ("message", "service",
                                                                   "request_id")}  # fmt: skip
        return {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {"code": code, **fields},
                    "required": ["code", "message", "service", "request_id"],
                    "additionalProperties": False,
                }
            },
            "required": ["error"],
            "additionalProperties": False,
        }

    meanings = "; ".join(f"{code}: {text}" for code, text in UNAVAILABLE_CODES.items())
    unavailable = {"type": "string", "enum": list(UNAVAILABLE_CODES), "description": meanings}
    return {"Error": error({"type": "string"}), "Unavailable": error(unavailable)}


def _responses(route: Route) -> dict[str, Any]:
    """Every status the operation can answer: its own, and those its kind brings."""
    texts: dict[int, str] = dict(route.responses)
    if not any(200 <= status < 300 for status in texts):
        texts[200] = "OK"
    has_path = "{" in route.path
    reads_input = route.body is not None or route.schema is not None or route.query is not None
    if reads_input or route.idempotent or route.auth == "signature":
        texts.setdefault(400, _ERROR_TEXT[400])
    if route.auth in {"user", "admin", "signature"}:
        texts.setdefault(401, _ERROR_TEXT[401])
    if route.auth in {"user", "admin"}:
        texts.setdefault(403, _ERROR_TEXT[403])
    if has_path:
        texts.setdefault(404, _ERROR_TEXT[404])
    if route.body is not None or route.schema is not None or route.auth == "signature":
        texts.setdefault(413, _ERROR_TEXT[413])
    if route.tag != "health" or 503 in texts:
        texts.setdefault(503, _ERROR_TEXT[503])
    answers: dict[str, Any] = {}
    for status in sorted(texts):
        answer: dict[str, Any] = {"description": texts[status]}
        if status == 503 and route.tag == "health":  # readiness: the report itself
            answer["content"] = {"application/json": {"schema": {"type": "object"}}}
        elif status >= 400:
            schema = _UNAVAILABLE if status == 503 else _ERROR
            answer["content"] = {"application/json": {"schema": schema}}
        else:
            answer["content"] = {route.content_type: {"schema": _success(route)}}
        answers[str(status)] = answer
    return answers


def _success(route: Route) -> Schema:
    return {"type": "object"} if route.content_type == "application/json" else {"type": "string"}


def _parameters(route: Route, currencies: Mapping[str, int]) -> list[dict[str, Any]]:
    named = route.path_schemas(currencies) if route.path_schemas is not None else {}
    parameters = []
    for name in _path_parameters(route.path):
        if name not in named and not name.endswith("_id"):
            raise ValueError(f"{route.path}: say what {name} is (Route.path_schemas)")
        parameters.append(
            {"name": name, "in": "path", "required": True, "schema": named.get(name, UUID_SCHEMA)}
        )
    for name, schema in (route.query(currencies) if route.query is not None else {}).items():
        parameters.append({"name": name, "in": "query", "required": False, "schema": schema})
    for name, schema in route.headers.items():
        parameters.append({"name": name, "in": "header", "required": True, "schema": schema})
    if route.idempotent:
        parameters.append(
            {"name": IDEMPOTENCY_HEADER, "in": "header", "required": True,
             "description": "the same key repeats the first answer; 1 to 128 printable ASCII "
                            "characters, no spaces",
             "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN}}
        )  # fmt: skip
    return parameters


def _body(route: Route, currencies: Mapping[str, int]) -> Schema | None:
    if route.schema is not None:
        return route.schema(currencies)
    if route.body is None:
        return None
    return route.body.model_json_schema(ref_template="#/components/schemas/{model}")


def _path_parameters(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]
