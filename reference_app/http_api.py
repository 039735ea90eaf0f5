"""Request parsing and JSON responses shared by the services' views."""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, TypeVar, overload

from aiohttp import web
from pydantic import BaseModel, ValidationError

from isolation_harness.reference_app.errors import BadRequest
from isolation_harness.reference_app.money import to_json

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Any]
IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Route:
    """One endpoint with what the OpenAPI document says of it."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    auth: str = "user"  # user | admin | none | signature
    body: type[BaseModel] | None = None
    idempotent: bool = False
    responses: Mapping[int, str] = field(default_factory=dict)


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return to_json(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(payload: object) -> str:
    """JSON with Decimal amounts as strings (never floats), UUIDs and datetimes as strings."""
    return json.dumps(payload, default=_default, separators=(",", ":"))


def respond(payload: object, status: int = 200) -> web.Response:
    return web.json_response(payload, status=status, dumps=dumps)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body, or :class:`BadRequest` saying what is wrong."""
    if not request.can_read_body:
        raise BadRequest("request body required (a JSON object)", code="invalid_body")
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON ({exc})", code="invalid_body") from None
    except RecursionError:  # arrays or objects nested thousands deep: no body of ours is
        raise BadRequest("body is nested too deeply", code="invalid_body") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object", code="invalid_body")
    return body


async def read_model(request: web.Request, model: type[M]) -> M:
    """The body validated by ``model``; the first problem names its field."""
    body = await read_json(request)
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "body"
        raise BadRequest(f"{where}: {error['msg']}", code="invalid_field") from None


@overload
def idempotency_key(request: web.Request) -> str: ...
@overload
def idempotency_key(request: web.Request, *, required: Literal[True]) -> str: ...
@overload
def idempotency_key(request: web.Request, *, required: bool) -> str | None: ...


def idempotency_key(request: web.Request, *, required: bool = True) -> str | None:
    """The ``Idempotency-Key`` header (1 to 128 printable characters)."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        if required:
            raise BadRequest(
                f"{IDEMPOTENCY_HEADER} header required", code="missing_idempotency_key"
            )
        return None
    key = key.strip()
    if not 1 <= len(key) <= 128 or not key.isprintable():
        raise BadRequest(
            f"{IDEMPOTENCY_HEADER}: 1 to 128 printable characters", code="invalid_idempotency_key"
        )
    return key


def path_uuid(request: web.Request, name: str) -> uuid.UUID:
    """A UUID from the path; a malformed one is a 404 (no such resource)."""
    from isolation_harness.reference_app.errors import NotFound

    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise NotFound(f"no such {name.removesuffix('_id')}") from None


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name}: must be an integer", code="invalid_query") from None
    if not low <= value <= high:
        raise BadRequest(f"{name}: must be between {low} and {high}", code="invalid_query")
    return value
