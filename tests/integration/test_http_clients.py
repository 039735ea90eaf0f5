"""The payment provider and the price source each have their own HTTP client, with its own
connection limit: a slow provider holding every connection its client may open leaves the
price source's client untouched (real fakes, through their Toxiproxy links)."""

from __future__ import annotations

import asyncio

from isolation_harness.reference_app.app_keys import PRICES_HTTP, PROVIDER_HTTP
from tests.plugins.polling import until
from tests.plugins.reference_app import PaymentsFake, StartApp

DEPOSIT = "/api/nowpayments/create-deposit"
PROVIDER_CONNECTIONS = 2
DEPOSITS = 6


async def test_a_slow_provider_cannot_take_the_price_sources_connections(
    start_app: StartApp, payments_fake: PaymentsFake
) -> None:
    # no feed: each swap quote asks the price source through the app's client, now
    app = await start_app(
        price_feed_interval=None, provider_connections=PROVIDER_CONNECTIONS, provider_timeout=20.0
    )
    provider, prices = app.app[PROVIDER_HTTP], app.app[PRICES_HTTP]
    assert provider is not prices
    assert provider.connector is not None
    assert provider.connector.limit == PROVIDER_CONNECTIONS
    _, token = await app.new_user()
    await payments_fake.control("POST", "/mode", {"mode": "slow", "delay_ms": 4000})
    body = {"currency": "BTC", "amount": "0.01"}
    deposits = [
        asyncio.create_task(app.call("POST", DEPOSIT, token=token, key=f"slow-{n}", json=body))
        for n in range(DEPOSITS)
    ]
    try:
        # the provider's client is full: its connections are taken, the rest queue
        await until(lambda: _busy(app.app[PROVIDER_HTTP]), timeout=10)
        status, body = await app.call(
            "POST", "/api/swap/quotes", token=token,
            json={"sell": "BTC", "buy": "USDT", "amount": "0.1"},
        )  # fmt: skip
        assert status == 201, body
        assert not any(task.done() for task in deposits), "the quote waited for the provider"
    finally:
        await payments_fake.control("POST", "/mode", {"mode": "normal"})
        answers = await asyncio.gather(*deposits)
    assert all(status == 201 for status, _ in answers), answers


async def _busy(http: object) -> bool:
    """Every connection the client may open is taken (aiohttp keeps no public count)."""
    connector = getattr(http, "connector", None)
    acquired = getattr(connector, "_acquired", ())
    return len(acquired) >= PROVIDER_CONNECTIONS
