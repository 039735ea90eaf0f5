"""The price-source fake over real HTTP, and the app's client of it (PriceSource)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from isolation_harness.reference_app.errors import DependencyUnavailable
from isolation_harness.reference_app.fakes.prices import (
    DEFAULT_PRICES,
    PricesFakeConfig,
    create_prices_app,
)
from isolation_harness.reference_app.prices_client import PriceSource
from isolation_harness.topology.ports import free_port

TABLE = {
    "BTC-USDT": "64000.00",
    "BTC-USD": "64000.00",
    "ETH-USDT": "3200.00",
    "ETH-USD": "3200.00",
    "BTC-ETH": "20.00000000",
    "USDT-USD": "1.0000",
    "USDT-BTC": "0.000015625",
    "USD-BTC": "0.000015625",
    "USDT-ETH": "0.0003125",
    "USD-ETH": "0.0003125",
    "ETH-BTC": "0.05",
    "USD-USDT": "1",
}


@dataclass
class Answer:
    status: int
    text: str

    @property
    def body(self) -> Any:
        return json.loads(self.text)


@dataclass
class Fake:
    server: TestServer
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def call(self, method: str, path: str, body: Any = None) -> Answer:
        async with self.http.request(method, f"{self.url}{path}", json=body) as response:
            return Answer(response.status, await response.text())

    async def mode(self, **body: Any) -> None:
        answer = await self.call("POST", "/_control/mode", body)
        assert answer.status == 200, answer.text

    def client(self, **options: Any) -> PriceSource:
        return PriceSource(self.http, self.url, options.pop("timeout", 2.0), **options)


@pytest.fixture
async def fake() -> AsyncIterator[Fake]:
    server = TestServer(create_prices_app(PricesFakeConfig()), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        yield Fake(server, http)
    await server.close()


def recent(as_of: str, seconds: float = 5) -> bool:
    moment = datetime.fromisoformat(as_of)
    assert moment.tzinfo is not None
    return abs(datetime.now(UTC) - moment) < timedelta(seconds=seconds)


# -- the price API --------------------------------------------------------------------------


async def test_all_pairs_from_the_documented_table(fake: Fake) -> None:
    answer = await fake.call("GET", "/v1/prices")
    assert answer.status == 200
    prices = answer.body["prices"]
    assert [p["pair"] for p in prices] == sorted(TABLE)
    assert {p["pair"]: p["price"] for p in prices} == TABLE
    assert all(recent(p["as_of"]) and p["as_of"].endswith("Z") for p in prices)
    assert {pair: format(price, "f") for pair, price in DEFAULT_PRICES.items()} == {
        pair: TABLE[pair] for pair in DEFAULT_PRICES
    }


async def test_one_pair(fake: Fake) -> None:
    answer = await fake.call("GET", "/v1/prices/BTC-USDT")
    assert answer.status == 200
    body = answer.body
    assert set(body) == {"pair", "price", "as_of"}
    assert (body["pair"], body["price"]) == ("BTC-USDT", "64000.00")
    assert isinstance(body["price"], str)
    assert recent(body["as_of"])
    lower = await fake.call("GET", "/v1/prices/eth-btc")
    assert (lower.status, lower.body["pair"], lower.body["price"]) == (200, "ETH-BTC", "0.05")


@pytest.mark.parametrize("pair", ["BTC-DOGE", "BTC-BTC", "BTCUSDT", "B-USDT", "BTC-USDT-ETH"])
async def test_unknown_pairs_are_404(fake: Fake, pair: str) -> None:
    answer = await fake.call("GET", f"/v1/prices/{pair}")
    assert answer.status == 404
    assert answer.body["error"]["code"] == "unknown_pair"


async def test_set_price_and_its_inverse_follows(fake: Fake) -> None:
    answer = await fake.call("PUT", "/_control/prices/BTC-USDT", body={"price": "3"})
    assert (answer.status, answer.body["price"]) == (200, "3")
    inverse = (await fake.call("GET", "/v1/prices/USDT-BTC")).body["price"]
    assert inverse == "0.333333333333333333"  # 1/3, 18 places
    # setting the inverse pair makes it the direct one
    await fake.call("PUT", "/_control/prices/usdt-btc", body={"price": "0.000016"})
    assert (await fake.call("GET", "/v1/prices/BTC-USDT")).body["price"] == "62500"
    assert (await fake.call("GET", "/v1/prices/USDT-BTC")).body["price"] == "0.000016"
    # a new currency can be priced
    await fake.call("PUT", "/_control/prices/SOL-USDT", body={"price": "150.25"})
    sol = (await fake.call("GET", "/v1/prices/USDT-SOL")).body["price"]
    assert Fraction(sol) == round(1 / Fraction("150.25"), 18)


async def test_inverse_rounds_half_even_at_18_places(fake: Fake) -> None:
    for price in ("7", "19.87654321", "64123.45", "0.000000000000000003"):
        await fake.call("PUT", "/_control/prices/ETH-USD", body={"price": price})
        got = (await fake.call("GET", "/v1/prices/USD-ETH")).body["price"]
        assert Fraction(got) == round(1 / Fraction(price), 18), price


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_control/prices/BTC-USDT", {"price": 64000}),
        ("/_control/prices/BTC-USDT", {"price": "0"}),
        ("/_control/prices/BTC-USDT", {"price": "-1"}),
        ("/_control/prices/BTC-USDT", {"price": "1e3"}),
        ("/_control/prices/BTC-USDT", {"price": "0.0000000000000000001"}),
        ("/_control/prices/BTC-USDT", {"price": "1000000000000000"}),
        ("/_control/prices/BTC-USDT", {}),
        ("/_control/prices/BTC-USDT", ["64000"]),
        ("/_control/mode", {"mode": "broken"}),
        ("/_control/mode", {"mode": "error", "status": 200}),
        ("/_control/mode", {"mode": "slow", "delay_ms": -1}),
        ("/_control/mode", {"mode": "stale", "stale_seconds": "3600"}),
    ],
)
async def test_bad_control_requests_are_400(fake: Fake, path: str, body: Any) -> None:
    method = "PUT" if "prices" in path else "POST"
    answer = await fake.call(method, path, body=body)
    assert answer.status == 400, answer.text
    assert answer.body["error"]["code"] == "invalid_request"
    assert (await fake.call("GET", "/v1/prices/BTC-USDT")).body["price"] == "64000.00"
    assert (await fake.call("GET", "/_control/mode")).body["mode"] == "normal"


# -- modes ----------------------------------------------------------------------------------


async def test_error_mode(fake: Fake) -> None:
    await fake.mode(mode="error", status=500)
    answer = await fake.call("GET", "/v1/prices/BTC-USDT")
    assert answer.status == 500
    assert answer.body["error"]["code"] == "injected_fault"
    assert (await fake.call("GET", "/v1/prices")).status == 500
    # the control API is never affected
    mode = (await fake.call("GET", "/_control/mode")).body
    # every misbehaving answer is counted: the evidence that a provider fault bit
    assert mode == {"mode": "error", "status": 500, "delay_ms": 1000, "stale_seconds": 3600,
                    "misbehaved": 2}  # fmt: skip
    await fake.mode(mode="error")
    assert (await fake.call("GET", "/v1/prices/BTC-USDT")).status == 503
    await fake.mode(mode="normal")
    assert (await fake.call("GET", "/v1/prices/BTC-USDT")).status == 200
    assert (await fake.call("GET", "/_control/mode")).body["misbehaved"] == 3


async def test_slow_mode(fake: Fake) -> None:
    await fake.mode(mode="slow", delay_ms=300)
    started = time.monotonic()
    answer = await fake.call("GET", "/v1/prices/ETH-USD")
    assert time.monotonic() - started >= 0.3
    assert (answer.status, answer.body["price"]) == (200, "3200.00")


async def test_stale_mode(fake: Fake) -> None:
    await fake.mode(mode="stale", stale_seconds=7200)
    answer = await fake.call("GET", "/v1/prices/BTC-USD")
    assert answer.status == 200
    as_of = datetime.fromisoformat(answer.body["as_of"])
    assert abs(datetime.now(UTC) - timedelta(hours=2) - as_of) < timedelta(seconds=5)
    assert answer.body["price"] == "64000.00"


async def test_malformed_mode(fake: Fake) -> None:
    await fake.mode(mode="malformed")
    answer = await fake.call("GET", "/v1/prices/BTC-USD")
    assert answer.status == 200
    with pytest.raises(ValueError, match=r"Unterminated|Expecting"):
        answer.body  # noqa: B018


async def test_reset(fake: Fake) -> None:
    await fake.call("PUT", "/_control/prices/BTC-USDT", body={"price": "1.5"})
    await fake.mode(mode="error")
    answer = await fake.call("POST", "/_control/reset")
    assert (answer.status, answer.body) == (200, {"reset": True})
    assert (await fake.call("GET", "/v1/prices/BTC-USDT")).body["price"] == "64000.00"
    assert (await fake.call("GET", "/_control/mode")).body["mode"] == "normal"


# -- the app's client against it ------------------------------------------------------------


async def test_client_reads_a_price(fake: Fake) -> None:
    market = await fake.client().price("USDT", "ETH")
    assert market.pair == "USDT-ETH"
    assert market.price == Decimal("0.0003125")
    assert market.as_of.tzinfo is not None
    assert abs(datetime.now(UTC) - market.as_of) < timedelta(seconds=5)


@pytest.mark.parametrize(
    ("mode", "code", "cause"),
    [
        ({"mode": "error", "status": 503}, "price_source_unavailable", "it answered HTTP 503"),
        ({"mode": "error", "status": 429}, "price_source_unavailable", "it answered HTTP 429"),
        ({"mode": "slow", "delay_ms": 800}, "price_source_unavailable", "no answer within 0.2 s"),
        ({"mode": "malformed"}, "price_source_unavailable", "malformed answer (not JSON)"),
        ({"mode": "stale", "stale_seconds": 61}, "stale_price", "at most 60 s"),
        ({"mode": "stale", "stale_seconds": -30}, "stale_price", "s ahead of this clock"),
    ],
    ids=["5xx", "4xx", "timeout", "malformed", "stale", "future"],
)
async def test_client_failures_name_the_cause(
    fake: Fake, mode: dict[str, Any], code: str, cause: str
) -> None:
    await fake.mode(**mode)
    started = time.monotonic()
    with pytest.raises(DependencyUnavailable) as failed:
        await fake.client(timeout=0.2).price("BTC", "USDT")
    assert time.monotonic() - started < 0.7
    error = failed.value
    assert (error.status, error.code, error.service) == (503, code, "swap")
    assert cause in error.message


async def test_client_unknown_pair_and_no_source(fake: Fake) -> None:
    with pytest.raises(DependencyUnavailable, match="HTTP 404"):
        await fake.client().price("BTC", "DOGE")
    down = PriceSource(fake.http, f"http://127.0.0.1:{free_port()}", 1.0)
    with pytest.raises(DependencyUnavailable, match="cannot reach it") as failed:
        await down.price("BTC", "USDT")
    assert failed.value.code == "price_source_unavailable"


async def test_client_max_age_is_a_parameter(fake: Fake) -> None:
    await fake.mode(mode="stale", stale_seconds=120)
    market = await fake.client(max_age=300).price("BTC", "USDT")
    assert market.price == Decimal("64000.00")
    with pytest.raises(DependencyUnavailable) as failed:
        await fake.client(max_age=100).price("BTC", "USDT")
    assert failed.value.code == "stale_price"


@pytest.mark.parametrize(
    "body",
    [
        {"pair": "BTC-USD", "price": "1", "as_of": "2030-01-01T00:00:00Z"},
        {"pair": "BTC-USDT", "price": 64000, "as_of": "2030-01-01T00:00:00Z"},
        {"pair": "BTC-USDT", "price": "-1", "as_of": "2030-01-01T00:00:00Z"},
        {"pair": "BTC-USDT", "price": "0", "as_of": "2030-01-01T00:00:00Z"},
        {"pair": "BTC-USDT", "price": "1e3", "as_of": "2030-01-01T00:00:00Z"},
        {"pair": "BTC-USDT", "price": "1", "as_of": "yesterday"},
        {"pair": "BTC-USDT", "price": "1", "as_of": "2030-01-01T00:00:00"},
        {"pair": "BTC-USDT", "price": "1"},
        ["BTC-USDT", "1"],
    ],
)
async def test_client_refuses_malformed_prices(body: Any) -> None:
    """A source that answers 200 with something other than a price of the pair asked."""

    async def answer(request: web.Request) -> web.Response:
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/v1/prices/{pair}", answer)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            # a limit no loaded machine reaches: the answer's shape is under test, not its time
            source = PriceSource(http, str(server.make_url("")), 30.0)
            with pytest.raises(DependencyUnavailable, match="malformed answer") as failed:
                await source.price("BTC", "USDT")
    finally:
        await server.close()
    assert failed.value.code == "price_source_unavailable"


# -- run on its own -------------------------------------------------------------------------


async def test_runs_standalone() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "isolation_harness.reference_app.fakes.prices",
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http:
            source = PriceSource(http, f"http://127.0.0.1:{port}", 1.0)
            async with asyncio.timeout(20):
                while True:
                    try:
                        market = await source.price("ETH", "USDT")
                        break
                    except DependencyUnavailable:
                        await asyncio.sleep(0.05)
        assert market.price == Decimal("3200.00")
    finally:
        process.terminate()
        process.wait(timeout=10)
