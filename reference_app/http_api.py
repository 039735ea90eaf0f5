"""Request parsing and JSON responses shared by the services' views."""

from __future__ import annotations

import datetime
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Literal, TypeVar, overload

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ValidationError

from isolation_harness.reference_app.errors import BadRequest
from isolation_harness.reference_app.money import to_json

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Request], Any]
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: what an Idempotency-Key may be (the OpenAPI document says the same)
IDEMPOTENCY_KEY_PATTERN = "^[!-~]{1,128}$"
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN.strip("^$"))
#: the most rows a listing's ``limit`` may ask for (its default: :data:`PAGE`)
MAX_LIMIT = 500
PAGE = 50
#: a query integer as the OpenAPI document describes it: digits only
_DIGITS = re.compile("[0-9]{1,18}")
_UUID = re.compile("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


#: a JSON Schema
Schema = dict[str, Any]
#: the schemas of some request parts (query or path parameters, a body), given the app's
#: currencies (code -> decimal places), which they may depend on
Described = Callable[[Mapping[str, int]], Schema]


@dataclass(frozen=True)
class Route:
    """One endpoint with what the OpenAPI document says of it."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    auth: str = "user"  # user | admin | none | signature
    #: the body's shape (parsed with it); ``schema`` adds what the view checks past it
    body: type[BaseModel] | None = None
    idempotent: bool = False
    responses: Mapping[int, str] = field(default_factory=dict)
    #: the body's whole JSON Schema (currency codes, amounts per currency), where the model
    #: alone does not say it all
    schema: Described | None = None
    #: query parameters: name -> JSON Schema (none required)
    query: Described | None = None
    #: path parameters that are not UUIDs (every ``..._id`` is one): name -> JSON Schema
    path_schemas: Described | None = None
    #: required headers other than Authorization and Idempotency-Key: name -> JSON Schema
    headers: Mapping[str, Schema] = field(default_factory=dict)
    #: rules a request may break that its schema cannot express (a 400's ``code`` -> the
    #: rule): the only 400s a request the document calls valid may get
    rules: Mapping[str, str] = field(default_factory=dict)
    #: what answers: JSON (the error shape on failures) unless this says another type
    content_type: str = "application/json"


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
    """The ``Idempotency-Key`` header: 1 to 128 printable ASCII characters, no spaces
    (:data:`IDEMPOTENCY_KEY_PATTERN`)."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        if required:
            raise BadRequest(
                f"{IDEMPOTENCY_HEADER} header required", code="missing_idempotency_key"
            )
        return None
    if _IDEMPOTENCY_KEY.fullmatch(key) is None:
        raise BadRequest(
            f"{IDEMPOTENCY_HEADER}: 1 to 128 printable ASCII characters without spaces",
            code="invalid_idempotency_key",
        )
    return key


def path_uuid(request: web.Request, name: str) -> uuid.UUID:
    """A UUID from the path (8-4-4-4-12 hex digits); anything else is a 404 (no such
    resource)."""
    from isolation_harness.reference_app.errors import NotFound

    raw = request.match_info[name]
    if _UUID.fullmatch(raw) is None:
        raise NotFound(f"no such {name.removesuffix('_id')}")
    return uuid.UUID(raw)


def _canonical_uuid(value: object) -> object:
    if isinstance(value, str) and _UUID.fullmatch(value) is None:
        raise ValueError("must be a UUID such as 123e4567-e89b-12d3-a456-426614174000")
    return value


#: a UUID in a body: only its 8-4-4-4-12 form, as the OpenAPI document's ``format: uuid``
UuidIn = Annotated[uuid.UUID, BeforeValidator(_canonical_uuid)]


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if _DIGITS.fullmatch(raw) is None:
        raise BadRequest(f"{name}: must be an integer", code="invalid_query")
    value = int(raw)
    if not low <= value <= high:
        raise BadRequest(f"{name}: must be between {low} and {high}", code="invalid_query")
    return value
