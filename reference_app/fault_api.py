"""The fault API (only when enabled in settings; admin token): break one service on purpose."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from isolation_harness.reference_app.api_schema import service_path
from isolation_harness.reference_app.app_keys import DATABASES, FAULTS, TOKENS
from isolation_harness.reference_app.errors import NotFound
from isolation_harness.reference_app.faults import Fault, FaultMode
from isolation_harness.reference_app.http_api import Route, read_model, respond


class SetFault(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: FaultMode
    slow_ms: int = Field(default=0, ge=0, le=600_000)


def _service(request: web.Request) -> str:
    service = request.match_info["service"]
    if service not in request.app[FAULTS].services:
        known = ", ".join(request.app[FAULTS].services)
        raise NotFound(f"no service {service!r} (known: {known})")
    return service


def _listing(request: web.Request) -> dict[str, object]:
    return {
        "faults": {
            s: {"mode": f.mode.value, "slow_ms": f.slow_ms}
            for s, f in request.app[FAULTS].all().items()
        }
    }


async def list_faults(request: web.Request) -> web.Response:
    request.app[TOKENS].admin(request)
    return respond(_listing(request))


async def set_fault(request: web.Request) -> web.Response:
    request.app[TOKENS].admin(request)
    service = _service(request)
    body = await read_model(request, SetFault)
    await request.app[FAULTS].set(service, Fault(body.mode, body.slow_ms))
    return respond(_listing(request))


async def clear_faults(request: web.Request) -> web.Response:
    request.app[TOKENS].admin(request)
    await request.app[FAULTS].clear_all()
    return respond(_listing(request))


async def recycle(request: web.Request) -> web.Response:
    """Close the service's idle connections, so that a new link fault bites at once."""
    request.app[TOKENS].admin(request)
    service = _service(request)
    pool = request.app[DATABASES].pool_of(service)
    await pool.pool.clear()
    return respond({"service": service, "pool": pool.name, "recycled": True})


ROUTES = [
    Route("GET", "/api/_faults", list_faults, "Faults per service", "faults", auth="admin"),
    Route("PUT", "/api/_faults/{service}", set_fault, "Break a service (raise|hang|slow|leak) "
          "or mend it (none)", "faults", auth="admin", body=SetFault, path_schemas=service_path),
    Route("DELETE", "/api/_faults", clear_faults, "Mend every service", "faults", auth="admin"),
    Route("POST", "/api/_faults/{service}/recycle", recycle, "Close the service's idle "
          "connections", "faults", auth="admin", path_schemas=service_path),
]  # fmt: skip
