"""The one error middleware: every error in the same JSON shape, never a stack trace."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from isolation_harness.reference_app.errors import Conflict
from isolation_harness.reference_app.middleware import errors, request_id


async def broken(request: web.Request) -> web.Response:
    raise ValueError("secret detail at /srv/app.py line 42")


async def refused(request: web.Request) -> web.Response:
    raise Conflict("no can do", service="wallet", code="invalid_transition")


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    app = web.Application(middlewares=[request_id, errors(structured=True)])
    app.router.add_get("/broken", broken)
    app.router.add_get("/refused", refused)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def test_unexpected_error_is_a_bare_500_with_the_request_id(
    server: TestServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(server.make_url("/broken"), headers={"X-Request-Id": "r-1"}) as r,
    ):
        assert r.status == 500
        assert r.headers["X-Request-Id"] == "r-1"
        body = await r.json()
        text = await r.text()
    assert body == {"error": {"code": "internal_error", "message": "internal error",
                              "service": "app", "request_id": "r-1"}}  # fmt: skip
    assert "secret detail" not in text
    assert "Traceback" not in text
    logged = [rec for rec in caplog.records if "unexpected error" in rec.getMessage()]
    assert logged, "the error must be logged with its request id"
    assert "r-1" in logged[0].getMessage()


async def test_app_errors_keep_their_status_code_and_service(server: TestServer) -> None:
    async with aiohttp.ClientSession() as http, http.get(server.make_url("/refused")) as r:
        assert r.status == 409
        body = await r.json()
    assert body["error"]["code"] == "invalid_transition"
    assert body["error"]["service"] == "wallet"
    assert len(body["error"]["request_id"]) == 32


async def test_unknown_route_is_json_404(server: TestServer) -> None:
    async with aiohttp.ClientSession() as http, http.get(server.make_url("/nope")) as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "not_found"
