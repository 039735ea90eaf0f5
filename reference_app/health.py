"""Liveness, readiness per service, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
import logging
import os
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from isolation_harness.reference_app.api_schema import service_path
from isolation_harness.reference_app.app_keys import DATABASES, METRICS, SETTINGS
from isolation_harness.reference_app.boundary import failure_kind
from isolation_harness.reference_app.db import PoolTimeout
from isolation_harness.reference_app.errors import AppError, NotFound
from isolation_harness.reference_app.http_api import Route, respond
from isolation_harness.reference_app.settings import SERVICES

READY_TIMEOUT = 1.0
log = logging.getLogger("reference_app.health")


async def live(request: web.Request) -> web.Response:
    return respond({"status": "ok", "worker": os.getpid()})


async def ready(request: web.Request) -> web.Response:
    """Each service's database answers ``SELECT 1`` (or which does not); 503 if any fails."""
    wanted = request.match_info.get("service")
    services = SERVICES if wanted is None else (wanted,)
    if wanted is not None and wanted not in SERVICES:
        raise NotFound(f"no service {wanted!r} (known: {', '.join(SERVICES)})")
    results = await asyncio.gather(*(_probe(request.app, s) for s in services))
    report = dict(zip(services, results, strict=True))
    healthy = all(r["ready"] for r in report.values())
    return respond(
        {"status": "ready" if healthy else "degraded", "services": report},
        status=200 if healthy else 503,
    )


async def _probe(app: web.Application, service: str) -> dict[str, object]:
    started = time.monotonic()
    try:
        await app[DATABASES].ping(service, deadline=READY_TIMEOUT)
    except Exception as exc:  # any failure means not ready; say which kind, and log it all
        log.warning("ready: %s's database does not answer: %r", service, exc)
        return {"ready": False, "error": _kind(exc)}
    return {"ready": True, "latency_ms": round((time.monotonic() - started) * 1000, 2)}


def _kind(exc: BaseException) -> str:
    """What kept a service from being ready, for an unauthenticated caller: the kind of
    failure, never the driver's text (hosts, ports, roles)."""
    if isinstance(exc, AppError):
        return exc.code
    if isinstance(exc, PoolTimeout):
        return "pool busy"
    if isinstance(exc, TimeoutError):
        return f"no answer within {READY_TIMEOUT:g} s"
    return failure_kind(exc)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    from isolation_harness.reference_app.openapi import document

    return respond(document(request.app, request.app[SETTINGS]))


ROUTES = [
    Route("GET", "/health/live", live, "The process answers", "health", auth="none"),
    Route("GET", "/health/ready", ready, "Every service's database answers", "health",
          auth="none", responses={200: "ready", 503: "a service is not ready"}),
    Route("GET", "/health/ready/{service}", ready, "One service's database answers", "health",
          auth="none", path_schemas=service_path,
          responses={200: "ready", 503: "not ready", 404: "unknown service"}),
    Route("GET", "/metrics", metrics, "Prometheus metrics", "health", auth="none",
          content_type="text/plain"),
    Route("GET", "/openapi.json", openapi, "This document", "health", auth="none"),
]  # fmt: skip
