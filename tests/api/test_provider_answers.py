"""What the app does with odd answers of the services it calls, served by a real HTTP server
here: a redirect is not followed (it would carry the provider's API key where it points),
and an answer without end is cut at the size limit, not read into memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal

import aiohttp
import pytest
from aiohttp import web

from isolation_harness.reference_app.errors import DependencyUnavailable
from isolation_harness.reference_app.http_reads import MAX_ANSWER_BYTES
from isolation_harness.reference_app.prices_client import PriceSource
from isolation_harness.reference_app.services.deposits.provider import (
    PaymentProvider,
    ProviderUnavailable,
)
from isolation_harness.topology.ports import free_port

API_KEY = "provider-api-key-0123"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Serve = Callable[[dict[str, Handler]], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``await serve({"POST /v1/payment": handler})``: a server of those routes; its URL."""
    runners: list[web.AppRunner] = []

    async def start(routes: dict[str, Handler]) -> str:
        app = web.Application()
        for route, handler in routes.items():
            method, path = route.split(" ", 1)
            app.router.add_route(method, path, handler)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def endless(request: web.Request) -> web.StreamResponse:
    """200 and more bytes than the limit, without a length."""
    response = web.StreamResponse()
    await response.prepare(request)
    for _ in range(MAX_ANSWER_BYTES // 1024 * 4):
        await response.write(b"x" * 1024)
    await response.write_eof()
    return response


async def test_the_provider_client_does_not_follow_a_redirect_with_its_key(serve: Serve) -> None:
    seen: list[dict[str, str]] = []

    async def elsewhere(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response({})

    other = await serve({"POST /steal": elsewhere, "GET /steal": elsewhere})

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(f"{other}/steal")

    provider_url = await serve({"POST /v1/payment": redirect})
    async with aiohttp.ClientSession() as http:
        client = PaymentProvider(http, provider_url, API_KEY, timeout=5)
        with pytest.raises(ProviderUnavailable, match="a redirect: not followed"):
            await client.create_payment(
                amount=Decimal("10"), currency="USDT", order_id="o-1", ipn_callback_url="http://x"
            )
    assert seen == [], "the API key went to the redirect's target"


async def test_an_endless_provider_answer_is_cut_at_the_limit(serve: Serve) -> None:
    provider_url = await serve({"POST /v1/payment": endless})
    async with aiohttp.ClientSession() as http:
        client = PaymentProvider(http, provider_url, API_KEY, timeout=5)
        with pytest.raises(ProviderUnavailable, match=f"larger than {MAX_ANSWER_BYTES} bytes"):
            await client.create_payment(
                amount=Decimal("10"), currency="USDT", order_id="o-2", ipn_callback_url="http://x"
            )


async def test_an_endless_price_answer_is_cut_at_the_limit(serve: Serve) -> None:
    source_url = await serve({"GET /v1/prices/{pair}": endless})
    async with aiohttp.ClientSession() as http:
        with pytest.raises(DependencyUnavailable, match="larger than") as failed:
            await PriceSource(http, source_url, 5.0).price("BTC", "USDT")
    assert failed.value.code == "price_source_unavailable"
