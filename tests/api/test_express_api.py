"""Express buy over HTTP: liquidity, quotes, orders, ownership, expiry, price trouble, and
bad input for every endpoint (a 4xx with a reason, nothing written)."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from isolation_harness.reference_app.app_keys import EXPRESS, WALLET
from isolation_harness.reference_app.money import DEFAULT_CURRENCIES
from tests.plugins.reference_app import ADMIN_TOKEN, PricesFake, RunningApp, StartApp

QUOTES = "/api/express/quotes"
ORDERS = "/api/express/orders"
LIQUIDITY = "/api/admin/liquidity"
QUOTE_FIELDS = {
    "quote_id", "state", "pair", "buy", "pay", "buy_amount", "pay_amount", "fee",
    "fee_currency", "price", "markup", "rate", "price_as_of", "created_at", "expires_at",
}  # fmt: skip
ORDER_FIELDS = {
    "order_id", "quote_id", "state", "reason", "buy", "pay", "buy_amount", "pay_amount", "fee",
    "fee_currency", "rate", "created_at", "filled_at", "transaction_id",
}  # fmt: skip


@pytest.fixture
def prices(prices_fake: PricesFake) -> PricesFake:
    """The price-source fake the app fixtures already started (reached directly here)."""
    return prices_fake


@pytest.fixture
async def coin(prices: PricesFake) -> str:
    """A currency of this test's own (8 places) at 250 USDT: its liquidity starts at zero."""
    code = f"X{secrets.token_hex(3).upper()}"
    await prices.control("PUT", f"/prices/{code}-USDT", {"price": "250.00"})
    return code


@pytest.fixture
async def app(start_app: StartApp, prices: PricesFake, coin: str) -> RunningApp:
    return await start_app(prices_url=prices.url, currencies={**DEFAULT_CURRENCIES, coin: 8})


def assert_error(status: int, body: Any, expected: int, code: str, fragment: str = "") -> None:
    assert status == expected, body
    assert set(body["error"]) == {"code", "message", "service", "request_id"}
    assert body["error"]["code"] == code, body
    assert body["error"]["message"], body
    assert fragment.lower() in body["error"]["message"].lower(), body


async def balances(app: RunningApp, token: str) -> dict[str, str]:
    status, body = await app.call("GET", "/api/wallet/balances", token=token)
    assert status == 200, body
    return {b["currency"]: b["available"] for b in body["balances"]}


async def levels(app: RunningApp) -> dict[str, str]:
    status, body = await app.call("GET", LIQUIDITY, token=ADMIN_TOKEN)
    assert status == 200, body
    return {level["currency"]: level["available"] for level in body["liquidity"]}


async def fund(app: RunningApp, currency: str, amount: str) -> None:
    status, body = await app.call(
        "POST", LIQUIDITY, token=ADMIN_TOKEN, key=secrets.token_hex(8),
        json={"currency": currency, "amount": amount},
    )  # fmt: skip
    assert status == 201, body


async def ledger_size(app: RunningApp) -> tuple[int, int]:
    async with app.app[WALLET].db.cursor() as cur:
        await cur.execute(
            "SELECT (SELECT count(*) FROM wallet.transactions), "
            "(SELECT count(*) FROM wallet.entries)"
        )
        row = await cur.fetchone()
    return int(row[0]), int(row[1])


async def express_rows(app: RunningApp, user: uuid.UUID) -> tuple[int, int]:
    """(quotes, orders) of the user."""
    async with app.app[EXPRESS].db.cursor() as cur:
        await cur.execute(
            "SELECT (SELECT count(*) FROM express.quotes WHERE user_id = %(u)s), "
            "(SELECT count(*) FROM express.orders WHERE user_id = %(u)s)",
            {"u": str(user)},
        )
        row = await cur.fetchone()
    return int(row[0]), int(row[1])


async def quote_for(app: RunningApp, token: str, buy: str, amount: str) -> dict[str, Any]:
    status, quote = await app.call(
        "POST", QUOTES, token=token, json={"buy": buy, "pay": "USDT", "amount": amount}
    )
    assert status == 201, quote
    return quote


async def test_fund_quote_and_order_over_http(app: RunningApp, coin: str) -> None:
    assert (await levels(app))[coin] == "0"
    request, key = {"currency": coin, "amount": "10"}, f"fund-{coin}"
    status, funded = await app.call("POST", LIQUIDITY, token=ADMIN_TOKEN, key=key, json=request)
    assert status == 201, funded
    assert isinstance(funded["transaction_id"], int)
    assert {k: v for k, v in funded.items() if k != "transaction_id"} == {
        "replayed": False, "currency": coin, "amount": "10", "liquidity": "10",
    }  # fmt: skip
    status, again = await app.call("POST", LIQUIDITY, token=ADMIN_TOKEN, key=key, json=request)
    assert (status, again) == (200, {**funded, "replayed": True})
    assert (await levels(app))[coin] == "10"

    _user, token = await app.new_user(funds={"USDT": "1000"})
    status, quote = await app.call(
        "POST", QUOTES, token=token, json={"buy": coin, "pay": "USDT", "amount": "2"}
    )
    assert status == 201, quote
    assert set(quote) == QUOTE_FIELDS
    # 250 USDT plus the 1 % markup: 252.5 a coin; 500 USDT to liquidity, 5 USDT fee
    assert {k: quote[k] for k in QUOTE_FIELDS - {"quote_id", "price_as_of", "created_at",
                                                 "expires_at"}} == {
        "state": "open", "pair": f"{coin}-USDT", "buy": coin, "pay": "USDT",
        "buy_amount": "2", "pay_amount": "505", "fee": "5", "fee_currency": "USDT",
        "price": "250", "markup": "0.01", "rate": "252.5",
    }  # fmt: skip
    assert datetime.fromisoformat(quote["expires_at"]) > datetime.now(UTC)
    path = f"{QUOTES}/{quote['quote_id']}"
    assert await app.call("GET", path, token=token) == (200, quote)

    status, order = await app.call("POST", f"{path}/orders", token=token, key="o1")
    assert status == 201, order
    assert set(order) == ORDER_FIELDS | {"replayed"}
    assert (order["state"], order["reason"], order["replayed"]) == ("filled", None, False)
    assert (order["quote_id"], order["buy_amount"], order["pay_amount"], order["fee"]) == (
        quote["quote_id"], "2", "505", "5",
    )  # fmt: skip
    assert isinstance(order["transaction_id"], int)
    assert await balances(app, token) == {"USDT": "495", coin: "2"}
    assert (await levels(app))[coin] == "8"

    status, replay = await app.call("POST", f"{path}/orders", token=token, key="o1")
    assert (status, replay) == (200, {**order, "replayed": True})
    status, seen = await app.call("GET", f"{ORDERS}/{order['order_id']}", token=token)
    assert (status, seen) == (200, {k: v for k, v in order.items() if k != "replayed"})
    _, quote_now = await app.call("GET", path, token=token)
    assert quote_now["state"] == "ordered"
    assert await balances(app, token) == {"USDT": "495", coin: "2"}
    _, entries = await app.call("GET", "/api/wallet/transactions", token=token)
    references = [e["reference"] for e in entries["entries"]]
    assert references.count(f"express:order:{order['order_id']}") == 2  # one transaction


async def test_short_liquidity_is_409_and_nothing_moves(app: RunningApp, coin: str) -> None:
    await fund(app, coin, "1")
    user, token = await app.new_user(funds={"USDT": "1000"})
    quote = await quote_for(app, token, coin, "1.5")
    ledger = await ledger_size(app)

    status, body = await app.call(
        "POST", f"{QUOTES}/{quote['quote_id']}/orders", token=token, key="o1"
    )

    assert_error(status, body, 409, "insufficient_liquidity", coin)
    assert await ledger_size(app) == ledger
    assert await balances(app, token) == {"USDT": "1000"}
    assert (await levels(app))[coin] == "1"
    assert await express_rows(app, user) == (1, 1)  # the order, rejected
    await fund(app, coin, "1")  # and the same request goes through once liquidity came
    status, order = await app.call(
        "POST", f"{QUOTES}/{quote['quote_id']}/orders", token=token, key="o1"
    )
    assert (status, order["state"]) == (201, "filled"), order
    assert (await levels(app))[coin] == "0.5"


async def test_insufficient_funds_is_409_and_nothing_moves(app: RunningApp, coin: str) -> None:
    await fund(app, coin, "5")
    _user, token = await app.new_user(funds={"USDT": "100"})
    quote = await quote_for(app, token, coin, "1")
    ledger = await ledger_size(app)
    status, body = await app.call(
        "POST", f"{QUOTES}/{quote['quote_id']}/orders", token=token, key="o1"
    )
    assert_error(status, body, 409, "insufficient_funds")
    assert await ledger_size(app) == ledger
    assert await balances(app, token) == {"USDT": "100"}
    assert (await levels(app))[coin] == "5"


async def test_expired_quote_is_410_and_nothing_moves(app: RunningApp, coin: str) -> None:
    app.app[EXPRESS].quote_ttl = timedelta(seconds=0.2)
    await fund(app, coin, "5")
    _user, token = await app.new_user(funds={"USDT": "1000"})
    quote = await quote_for(app, token, coin, "1")
    deadline = datetime.fromisoformat(quote["expires_at"])
    async with asyncio.timeout(5):
        while datetime.now(UTC) < deadline:
            await asyncio.sleep(0.01)
    path = f"{QUOTES}/{quote['quote_id']}"
    status, seen = await app.call("GET", path, token=token)
    assert (status, seen["state"]) == (200, "expired")
    ledger = await ledger_size(app)
    status, body = await app.call("POST", f"{path}/orders", token=token, key="o1")
    assert_error(status, body, 410, "quote_expired", "expired")
    assert body["error"]["service"] == "express"
    assert await ledger_size(app) == ledger
    assert await balances(app, token) == {"USDT": "1000"}


async def test_someone_elses_quote_and_order_are_404(app: RunningApp, coin: str) -> None:
    await fund(app, coin, "5")
    _owner, token = await app.new_user(funds={"USDT": "1000"})
    stranger, other = await app.new_user(funds={"USDT": "1000"})
    quote = await quote_for(app, token, coin, "1")
    path = f"{QUOTES}/{quote['quote_id']}"
    status, body = await app.call("GET", path, token=other)
    assert_error(status, body, 404, "quote_not_found")
    status, body = await app.call("POST", f"{path}/orders", token=other, key="o1")
    assert_error(status, body, 404, "quote_not_found")
    assert await express_rows(app, stranger) == (0, 0)

    status, order = await app.call("POST", f"{path}/orders", token=token, key="o1")
    assert status == 201, order
    status, body = await app.call("GET", f"{ORDERS}/{order['order_id']}", token=other)
    assert_error(status, body, 404, "order_not_found")
    assert await balances(app, other) == {"USDT": "1000"}


async def test_a_refused_price_is_503_naming_the_cause(app: RunningApp, prices: PricesFake) -> None:
    user, token = await app.new_user()
    request = {"buy": "BTC", "pay": "USDT", "amount": "0.01"}
    await prices.control("POST", "/mode", {"mode": "error", "status": 502})
    status, body = await app.call("POST", QUOTES, token=token, json=request)
    assert_error(status, body, 503, "price_source_unavailable", "HTTP 502")
    assert body["error"]["service"] == "express"
    await prices.control("POST", "/mode", {"mode": "stale"})
    status, body = await app.call("POST", QUOTES, token=token, json=request)
    assert_error(status, body, 503, "stale_price", "old")
    assert body["error"]["service"] == "express"
    assert await express_rows(app, user) == (0, 0)

    await prices.control("POST", "/reset", {})
    status, body = await app.call("POST", QUOTES, token=token, json=request)
    assert status == 201, body


# -- bad input, every endpoint --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        ({"buy": "DOGE", "pay": "USDT", "amount": "1"}, "invalid_currency", "unknown currency"),
        ({"buy": "BTC", "pay": "XYZ", "amount": "1"}, "invalid_currency", "pay"),
        ({"buy": "BTC", "pay": "BTC", "amount": "1"}, "same_currency", "different"),
        ({"buy": "BTC", "pay": "USDT", "amount": "0"}, "invalid_amount", "positive"),
        ({"buy": "BTC", "pay": "USDT", "amount": "-0.1"}, "invalid_amount", "not a plain"),
        ({"buy": "BTC", "pay": "USDT", "amount": "0.123456789"}, "invalid_amount", "8 decimal"),
        ({"buy": "USD", "pay": "BTC", "amount": "1.001"}, "invalid_amount", "2 decimal"),
        ({"buy": "BTC", "pay": "USDT", "amount": "abc"}, "invalid_amount", "not a plain"),
        ({"buy": "BTC", "pay": "USDT", "amount": "Infinity"}, "invalid_amount", "not a plain"),
        ({"buy": "BTC", "pay": "USDT", "amount": "1000000000000000"}, "invalid_amount", "less"),
        ({"buy": "BTC", "pay": "USDT", "amount": "100000000000"}, "amount_too_large", "cost"),
        ({"buy": "ETH", "pay": "BTC", "amount": "0.00000001"}, "amount_too_small", "worth"),
        ({"buy": "BTC", "pay": "USDT", "amount": 1}, "invalid_field", "amount"),
        ({"buy": "BTC", "pay": "USDT", "amount": 0.1}, "invalid_field", "amount"),
        ({"buy": "BTC", "pay": "USDT", "amount": None}, "invalid_field", "amount"),
        ({"buy": "BTC", "pay": "USDT"}, "invalid_field", "amount"),
        ({"buy": "BTC", "amount": "1"}, "invalid_field", "pay"),
        ({"buy": ["BTC"], "pay": "USDT", "amount": "1"}, "invalid_field", "buy"),
        ({"sell": "BTC", "buy": "USDT", "amount": "1"}, "invalid_field", "pay"),
        ({"buy": "BTC", "pay": "USDT", "amount": "1", "x": 1}, "invalid_field", "x"),
        (["BTC", "USDT", "1"], "invalid_body", "object"),
        ("not json", "invalid_body", "json"),
    ],
    ids=[
        "unknown-buy", "unknown-pay", "same-currency", "zero", "negative", "over-precise",
        "over-precise-usd", "not-a-number", "infinite", "too-large", "costs-too-much",
        "worth-nothing", "int", "float", "null", "no-amount", "no-pay", "buy-not-string",
        "swap-shaped", "extra-field", "array", "malformed",
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
    assert answer["error"]["service"] in {"app", "express"}
    assert await express_rows(app, user) == (0, 0)


async def test_quotes_need_a_user_token(app: RunningApp) -> None:
    body = {"buy": "BTC", "pay": "USDT", "amount": "0.01"}
    status, answer = await app.call("POST", QUOTES, json=body)
    assert_error(status, answer, 401, "unauthorized")
    status, answer = await app.call("POST", QUOTES, json=body, token=ADMIN_TOKEN)
    assert_error(status, answer, 403, "forbidden", "user token")


@pytest.mark.parametrize(
    ("token", "key", "body", "status", "code", "fragment"),
    [
        (None, "k", {"currency": "BTC", "amount": "1"}, 401, "unauthorized", "bearer"),
        ("user", "k", {"currency": "BTC", "amount": "1"}, 403, "forbidden", "admin"),
        ("admin", None, {"currency": "BTC", "amount": "1"}, 400, "missing_idempotency_key", ""),
        ("admin", "k" * 129, {"currency": "BTC", "amount": "1"}, 400,
         "invalid_idempotency_key", "128"),
        ("admin", "k", {"currency": "DOGE", "amount": "1"}, 400, "invalid_currency", "DOGE"),
        ("admin", "k", {"currency": 7, "amount": "1"}, 400, "invalid_field", "currency"),
        ("admin", "k", {"currency": "BTC", "amount": "0"}, 400, "invalid_amount", "positive"),
        ("admin", "k", {"currency": "BTC", "amount": "-5"}, 400, "invalid_amount", "plain"),
        ("admin", "k", {"currency": "USD", "amount": "0.001"}, 400, "invalid_amount", "2 decimal"),
        ("admin", "k", {"currency": "BTC", "amount": "NaN"}, 400, "invalid_amount", "plain"),
        ("admin", "k", {"currency": "BTC", "amount": "1000000000000000"}, 400, "invalid_amount",
         "less than"),
        ("admin", "k", {"currency": "BTC", "amount": "lots"}, 400, "invalid_amount", "plain"),
        ("admin", "k", {"currency": "BTC", "amount": 1.5}, 400, "invalid_field", "amount"),
        ("admin", "k", {"currency": "BTC", "amount": True}, 400, "invalid_field", "amount"),
        ("admin", "k", {"currency": "BTC"}, 400, "invalid_field", "amount"),
        ("admin", "k", {"amount": "1"}, 400, "invalid_field", "currency"),
        ("admin", "k", {"currency": "BTC", "amount": "1", "user_id": "x"}, 400,
         "invalid_field", "user_id"),
        ("admin", "k", ["BTC", "1"], 400, "invalid_body", "object"),
        ("admin", "k", "not json", 400, "invalid_body", "json"),
    ],
    ids=[
        "no-token", "user-token", "no-key", "long-key", "unknown-currency", "currency-int",
        "zero", "negative", "over-precise", "nan", "too-large", "not-a-number", "float",
        "bool", "no-amount", "no-currency", "extra-field", "array", "malformed",
    ],
)  # fmt: skip
async def test_bad_funding_requests_are_4xx_and_write_nothing(
    app: RunningApp,
    token: str | None,
    key: str | None,
    body: Any,
    status: int,
    code: str,
    fragment: str,
) -> None:
    _user, user_token = await app.new_user()
    bearer = {"admin": ADMIN_TOKEN, "user": user_token, None: None}[token]
    before, ledger = await levels(app), await ledger_size(app)
    if body == "not json":
        answer = await app.call(
            "POST", LIQUIDITY, token=bearer, key=key, data=b"{not json",
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
    else:
        answer = await app.call("POST", LIQUIDITY, token=bearer, key=key, json=body)
    assert_error(*answer, status, code, fragment)
    assert await levels(app) == before
    assert await ledger_size(app) == ledger


async def test_reused_funding_key_is_409_and_moves_nothing_more(app: RunningApp, coin: str) -> None:
    key = f"fund-{coin}"  # a key of this test's own: funding keys are global
    status, _ = await app.call(
        "POST", LIQUIDITY, token=ADMIN_TOKEN, key=key, json={"currency": coin, "amount": "1"}
    )
    assert status == 201
    ledger = await ledger_size(app)
    for other in ({"currency": coin, "amount": "2"}, {"currency": "BTC", "amount": "1"}):
        status, body = await app.call("POST", LIQUIDITY, token=ADMIN_TOKEN, key=key, json=other)
        assert_error(status, body, 409, "idempotency_key_reused")
    assert await ledger_size(app) == ledger
    assert (await levels(app))[coin] == "1"


@pytest.mark.parametrize(
    ("token", "status", "code"),
    [(None, 401, "unauthorized"), ("user", 403, "forbidden"), ("bad", 401, "unauthorized")],
    ids=["no-token", "user-token", "bad-token"],
)
async def test_liquidity_levels_need_the_admin_token(
    app: RunningApp, token: str | None, status: int, code: str
) -> None:
    _user, user_token = await app.new_user()
    bearer = {"user": user_token, "bad": "u1.nope.nope", None: None}[token]
    assert_error(*await app.call("GET", LIQUIDITY, token=bearer), status, code)


async def test_liquidity_levels_list_every_currency(app: RunningApp, coin: str) -> None:
    found = await levels(app)
    assert set(found) == {*DEFAULT_CURRENCIES, coin}
    assert found[coin] == "0"


@pytest.mark.parametrize(
    ("token", "key", "quote", "status", "code"),
    [
        (None, "k", "own", 401, "unauthorized"),
        ("admin", "k", "own", 403, "forbidden"),
        ("user", None, "own", 400, "missing_idempotency_key"),
        ("user", "", "own", 400, "invalid_idempotency_key"),
        ("user", "k" * 129, "own", 400, "invalid_idempotency_key"),
        ("user", "k", "not-a-uuid", 404, "not_found"),
        ("user", "k", "unknown", 404, "quote_not_found"),
        ("other", "k", "own", 404, "quote_not_found"),
    ],
    ids=["no-token", "admin-token", "no-key", "empty-key", "long-key", "bad-id", "unknown",
         "someone-elses"],
)  # fmt: skip
async def test_bad_order_requests_are_4xx_and_write_nothing(
    app: RunningApp, coin: str, token: str, key: str | None, quote: str, status: int, code: str
) -> None:
    await fund(app, coin, "5")
    user, user_token = await app.new_user(funds={"USDT": "1000"})
    stranger, other_token = await app.new_user(funds={"USDT": "1000"})
    own = await quote_for(app, user_token, coin, "1")
    quote_id = {"own": own["quote_id"], "not-a-uuid": "not-a-uuid", "unknown": uuid.uuid4()}
    bearer = {"user": user_token, "other": other_token, "admin": ADMIN_TOKEN, None: None}[token]
    ledger = await ledger_size(app)

    answer = await app.call("POST", f"{QUOTES}/{quote_id[quote]}/orders", token=bearer, key=key)

    assert_error(*answer, status, code)
    assert await ledger_size(app) == ledger
    assert await express_rows(app, user) == (1, 0)
    assert await express_rows(app, stranger) == (0, 0)
    assert await balances(app, user_token) == {"USDT": "1000"}
    assert (await levels(app))[coin] == "5"


@pytest.mark.parametrize("resource", ["quote", "order"])
@pytest.mark.parametrize(
    ("token", "target", "status", "code"),
    [
        (None, "own", 401, "unauthorized"),
        ("admin", "own", 403, "forbidden"),
        ("user", "not-a-uuid", 404, "not_found"),
        ("user", "unknown", 404, "{resource}_not_found"),
        ("other", "own", 404, "{resource}_not_found"),
    ],
    ids=["no-token", "admin-token", "bad-id", "unknown", "someone-elses"],
)
async def test_bad_reads_are_4xx(
    app: RunningApp, coin: str, resource: str, token: str, target: str, status: int, code: str
) -> None:
    await fund(app, coin, "5")
    _user, user_token = await app.new_user(funds={"USDT": "1000"})
    _stranger, other_token = await app.new_user()
    quote = await quote_for(app, user_token, coin, "1")
    _, order = await app.call(
        "POST", f"{QUOTES}/{quote['quote_id']}/orders", token=user_token, key="o1"
    )
    own = {"quote": f"{QUOTES}/{quote['quote_id']}", "order": f"{ORDERS}/{order['order_id']}"}
    base = {"quote": QUOTES, "order": ORDERS}[resource]
    path = {"own": own[resource], "not-a-uuid": f"{base}/not-a-uuid",
            "unknown": f"{base}/{uuid.uuid4()}"}[target]  # fmt: skip
    bearer = {"user": user_token, "other": other_token, "admin": ADMIN_TOKEN, None: None}[token]

    assert_error(*await app.call("GET", path, token=bearer), status, code.format(resource=resource))
