"""Swap over HTTP: quote, execute, ownership, expiry, bad input (nothing written)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from isolation_harness.reference_app.app_keys import SWAP
from tests.plugins.reference_app import PricesFake, RunningApp, StartApp

QUOTES = "/api/swap/quotes"
QUOTE_FIELDS = {
    "quote_id", "state", "pair", "sell", "buy", "sell_amount", "buy_amount", "fee",
    "fee_currency", "spread_amount", "spread_currency", "price", "rate", "price_as_of",
    "created_at", "expires_at", "executed_at", "transaction_id",
}  # fmt: skip


@pytest.fixture
def prices(prices_fake: PricesFake) -> PricesFake:
    """The price-source fake the app fixtures already started (reached directly here)."""
    return prices_fake


@pytest.fixture
async def app(start_app: StartApp, prices: PricesFake) -> RunningApp:
    return await start_app(prices_url=prices.url)


def assert_error(status: int, body: Any, expected: int, code: str, fragment: str = "") -> None:
    assert status == expected, body
    assert set(body["error"]) == {"code", "message", "service", "request_id"}
    assert body["error"]["code"] == code, body
    assert body["error"]["message"], body
    assert fragment.lower() in body["error"]["message"].lower(), body


async def quote_rows(app: RunningApp, user: uuid.UUID) -> int:
    async with app.app[SWAP].db.cursor() as cur:
        await cur.execute("SELECT count(*) FROM swap.quotes WHERE user_id = %s", (str(user),))
        row = await cur.fetchone()
        return int(row[0])


async def balances(app: RunningApp, token: str) -> dict[str, str]:
    status, body = await app.call("GET", "/api/wallet/balances", token=token)
    assert status == 200, body
    return {b["currency"]: b["available"] for b in body["balances"]}


async def test_quote_and_execute_over_http(app: RunningApp) -> None:
    _user, token = await app.new_user(funds={"BTC": "1"})
    status, quote = await app.call(
        "POST", QUOTES, token=token, json={"sell": "BTC", "buy": "USDT", "amount": "0.1"}
    )
    assert status == 201, quote
    assert set(quote) == QUOTE_FIELDS
    assert {k: quote[k] for k in ("state", "pair", "sell", "buy", "fee_currency")} == {
        "state": "open", "pair": "BTC-USDT", "sell": "BTC", "buy": "USDT", "fee_currency": "BTC",
    }  # fmt: skip
    # amounts are decimal strings: 64000.00 less the 0.5 % spread; the fee 0.2 % of 0.1 BTC
    assert (quote["price"], quote["rate"]) == ("64000", "63680")
    assert (quote["sell_amount"], quote["fee"], quote["buy_amount"]) == (
        "0.1", "0.0002", "6355.264",
    )  # fmt: skip
    assert quote["executed_at"] is None
    assert quote["transaction_id"] is None
    assert datetime.fromisoformat(quote["expires_at"]) > datetime.now(UTC)

    path = f"{QUOTES}/{quote['quote_id']}"
    status, seen = await app.call("GET", path, token=token)
    assert (status, seen) == (200, quote)

    status, done = await app.call("POST", f"{path}/execute", token=token, key="exec-1")
    assert status == 201, done
    assert done["state"] == "executed"
    assert done["replayed"] is False
    assert isinstance(done["transaction_id"], int)
    assert await balances(app, token) == {"BTC": "0.9", "USDT": "6355.264"}

    status, again = await app.call("POST", f"{path}/execute", token=token, key="exec-2")
    assert status == 200, again
    assert again == {**done, "replayed": True}
    assert await balances(app, token) == {"BTC": "0.9", "USDT": "6355.264"}
    status, entries = await app.call("GET", "/api/wallet/transactions", token=token)
    assert [e["reference"] for e in entries["entries"]].count(
        f"swap:quote:{quote['quote_id']}"
    ) == 2  # one transaction, a leg in each currency


async def test_execute_needs_an_idempotency_key(app: RunningApp) -> None:
    _user, token = await app.new_user(funds={"ETH": "1"})
    _, quote = await app.call(
        "POST", QUOTES, token=token, json={"sell": "ETH", "buy": "BTC", "amount": "1"}
    )
    status, body = await app.call("POST", f"{QUOTES}/{quote['quote_id']}/execute", token=token)
    assert_error(status, body, 400, "missing_idempotency_key")
    assert await balances(app, token) == {"ETH": "1"}


async def test_quotes_need_a_user_token(app: RunningApp) -> None:
    body = {"sell": "BTC", "buy": "USDT", "amount": "0.1"}
    status, answer = await app.call("POST", QUOTES, json=body)
    assert_error(status, answer, 401, "unauthorized")


async def test_stranger_gets_404(app: RunningApp) -> None:
    _owner, token = await app.new_user(funds={"BTC": "1"})
    _stranger, other = await app.new_user(funds={"BTC": "1"})
    _, quote = await app.call(
        "POST", QUOTES, token=token, json={"sell": "BTC", "buy": "ETH", "amount": "0.5"}
    )
    path = f"{QUOTES}/{quote['quote_id']}"
    status, body = await app.call("GET", path, token=other)
    assert_error(status, body, 404, "quote_not_found")
    status, body = await app.call("POST", f"{path}/execute", token=other, key="k")
    assert_error(status, body, 404, "quote_not_found")
    for missing in (f"{QUOTES}/{uuid.uuid4()}", f"{QUOTES}/not-a-uuid"):
        status, body = await app.call("GET", missing, token=token)
        assert status == 404, body
    assert await balances(app, other) == {"BTC": "1"}
    assert await balances(app, token) == {"BTC": "1"}
    _, seen = await app.call("GET", path, token=token)
    assert seen["state"] == "open"


async def test_insufficient_funds_is_409_and_the_quote_stays_open(app: RunningApp) -> None:
    _user, token = await app.new_user(funds={"USDT": "10"})
    _, quote = await app.call(
        "POST", QUOTES, token=token, json={"sell": "USDT", "buy": "BTC", "amount": "100"}
    )
    path = f"{QUOTES}/{quote['quote_id']}"
    status, body = await app.call("POST", f"{path}/execute", token=token, key="k")
    assert_error(status, body, 409, "insufficient_funds")
    _, seen = await app.call("GET", path, token=token)
    assert seen["state"] == "open"
    assert await balances(app, token) == {"USDT": "10"}


async def test_expired_quote_is_410_and_nothing_moves(
    start_app: StartApp, prices: PricesFake
) -> None:
    app = await start_app(prices_url=prices.url, quote_ttl_seconds=0.2)
    _user, token = await app.new_user(funds={"ETH": "3"})
    _, quote = await app.call(
        "POST", QUOTES, token=token, json={"sell": "ETH", "buy": "USD", "amount": "2"}
    )
    deadline = datetime.fromisoformat(quote["expires_at"])
    async with asyncio.timeout(5):
        while datetime.now(UTC) < deadline:
            await asyncio.sleep(0.01)
    path = f"{QUOTES}/{quote['quote_id']}"
    status, seen = await app.call("GET", path, token=token)
    assert (status, seen["state"]) == (200, "expired")
    status, body = await app.call("POST", f"{path}/execute", token=token, key="k")
    assert_error(status, body, 410, "quote_expired", "expired")
    assert body["error"]["service"] == "swap"
    assert await balances(app, token) == {"ETH": "3"}


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ({"sell": "DOGE", "buy": "USDT", "amount": "1"}, "invalid_currency", "unknown currency"),
        ({"sell": "BTC", "buy": "XYZ", "amount": "1"}, "invalid_currency", "buy"),
        ({"sell": "BTC", "buy": "BTC", "amount": "1"}, "same_currency", "different"),
        ({"sell": "BTC", "buy": "USDT", "amount": "0"}, "invalid_amount", "positive"),
        ({"sell": "BTC", "buy": "USDT", "amount": "-0.1"}, "invalid_amount", "not a plain"),
        ({"sell": "BTC", "buy": "USDT", "amount": "0.123456789"}, "invalid_amount", "8 decimal"),
        ({"sell": "USD", "buy": "BTC", "amount": "1.001"}, "invalid_amount", "2 decimal"),
        ({"sell": "BTC", "buy": "USDT", "amount": "abc"}, "invalid_amount", "not a plain"),
        ({"sell": "BTC", "buy": "USDT", "amount": "NaN"}, "invalid_amount", "not a plain"),
        ({"sell": "BTC", "buy": "USDT", "amount": "1000000000000000"}, "invalid_amount", "less"),
        ({"sell": "BTC", "buy": "USDT", "amount": 1}, "invalid_field", "amount"),
        ({"sell": "BTC", "buy": "USDT", "amount": 0.1}, "invalid_field", "amount"),
        ({"sell": "BTC", "buy": "USDT", "amount": None}, "invalid_field", "amount"),
        ({"sell": "BTC", "buy": "USDT"}, "invalid_field", "amount"),
        ({"sell": 1, "buy": "USDT", "amount": "1"}, "invalid_field", "sell"),
        ({"sell": "BTC", "buy": "USDT", "amount": "1", "x": 1}, "invalid_field", "x"),
        ({"sell": "USDT", "buy": "BTC", "amount": "0.000001"}, "amount_too_small", "nothing"),
        (["BTC", "USDT", "1"], "invalid_body", "object"),
        ("not json", "invalid_body", "json"),
    ],
    ids=[
        "unknown-sell", "unknown-buy", "same-currency", "zero", "negative", "over-precise",
        "over-precise-usd", "not-a-number", "nan", "too-large", "int", "float", "null",
        "missing", "sell-not-string", "extra-field", "buys-nothing", "array", "malformed",
    ],
)  # fmt: skip
async def test_bad_quote_requests_are_400_and_write_nothing(
    app: RunningApp, body: Any, code: str, fragment: str
) -> None:
    user, token = await app.new_user()
    if body == "not json":
        status, answer = await app.call(
            "POST", QUOTES, token=token, data=b"{not json",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
    else:
        status, answer = await app.call("POST", QUOTES, token=token, json=body)
    assert_error(status, answer, 400, code, fragment)
    assert await quote_rows(app, user) == 0


async def test_price_source_down_is_503_naming_the_cause(
    app: RunningApp, prices: PricesFake
) -> None:
    user, token = await app.new_user()
    request = {"sell": "BTC", "buy": "USDT", "amount": "0.1"}
    await prices.control("POST", "/mode", {"mode": "error", "status": 502})
    status, body = await app.call("POST", QUOTES, token=token, json=request)
    assert_error(status, body, 503, "price_source_unavailable", "HTTP 502")
    assert body["error"]["service"] == "swap"
    await prices.control("POST", "/mode", {"mode": "stale"})
    status, body = await app.call("POST", QUOTES, token=token, json=request)
    assert_error(status, body, 503, "stale_price", "old")
    assert await quote_rows(app, user) == 0

    await prices.control("POST", "/reset", {})
    status, body = await app.call("POST", QUOTES, token=token, json=request)
    assert status == 201, body


async def test_a_new_price_makes_a_new_quote(app: RunningApp, prices: PricesFake) -> None:
    _user, token = await app.new_user()
    await prices.control("PUT", "/prices/ETH-USDT", {"price": "2500.50"})
    status, quote = await app.call(
        "POST", QUOTES, token=token, json={"sell": "USDT", "buy": "ETH", "amount": "2500.5"}
    )
    assert status == 201, quote
    # 1 / 2500.50, rounded half-even at 18 places by the source, less the spread, down
    assert quote["price"] == "0.000399920015996801"
    assert quote["rate"] == "0.000397920415916816"
    assert quote["fee"] == "5.001"
    assert quote["buy_amount"] == "0.99300999"
