"""The app's middlewares: request id, per-route metrics, the one error middleware, and the
request's time limit."""

from __future__ import annotations

import logging
import time
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from isolation_harness.reference_app.app_keys import METRICS
from isolation_harness.reference_app.boundary import request_deadline
from isolation_harness.reference_app.errors import AppError, PayloadTooLarge
from isolation_harness.reference_app.http_api import respond

log = logging.getLogger("reference_app")
REQUEST_ID = web.RequestKey("request_id", str)
REQUEST_ID_HEADER = "X-Request-Id"


@web.middleware
async def request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every request an id (the caller's ``X-Request-Id`` if sane) and echo it."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    rid = given if 0 < len(given) <= 64 and given.isprintable() else uuid.uuid4().hex
    request[REQUEST_ID] = rid
    response = await handler(request)
    response.headers[REQUEST_ID_HEADER] = rid
    return response


def deadline(seconds: float) -> Middleware:
    """One time limit for all the work of a request (isolated design): a request that runs
    several use cases in a row is answered within the service's limit, not one per use case."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        with request_deadline(seconds):
            return await handler(request)

    return middleware


@web.middleware
async def metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every answer per route template and status, and time it."""
    started = time.perf_counter()
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    status = 500
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        status = exc.status
        raise
    else:
        status = response.status
        return response
    finally:
        app_metrics = request.app[METRICS]
        app_metrics.requests.labels(request.method, name, str(status)).inc()
        app_metrics.latency.labels(request.method, name).observe(time.perf_counter() - started)


def error_body(request: web.Request, code: str, message: str, service: str) -> dict[str, object]:
    return {
        "error": {
            "code": code,
            "message": message,
            "service": service,
            "request_id": request.get(REQUEST_ID, ""),
        }
    }


def errors(*, structured: bool) -> Middleware:
    """Turn every error into the same JSON shape.

    With ``structured=False`` (the legacy design) only the app's own errors are answered as
    JSON; anything else escapes to aiohttp's bare 500, as it did before the fixes.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except AppError as exc:
            if exc.status >= 500:  # the whole cause here, with the request's id; not to users
                cause = f"; cause: {exc.__cause__!r}" if exc.__cause__ is not None else ""
                log.warning("%s %s -> %s (request %s): %s%s", request.method, request.path,
                            exc.status, request.get(REQUEST_ID, ""), exc, cause)  # fmt: skip
            return respond(error_body(request, exc.code, exc.message, exc.service), exc.status)
        except web.HTTPRequestEntityTooLarge as exc:
            too_large = PayloadTooLarge(f"body too large: {exc.text}")
            return respond(error_body(request, too_large.code, too_large.message, "app"), 413)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = exc.reason.lower().replace(" ", "_")
            answer = respond(error_body(request, code, exc.reason, "app"), exc.status)
            if "Allow" in exc.headers:  # a 405 says which methods the route has
                answer.headers["Allow"] = exc.headers["Allow"]
            return answer
        except Exception:
            if not structured:
                raise
            log.exception("unexpected error in %s %s (request %s)", request.method,
                          request.path, request.get(REQUEST_ID))  # fmt: skip
            return respond(
                error_body(request, "internal_error", "internal error", "app"), status=500
            )

    return middleware
