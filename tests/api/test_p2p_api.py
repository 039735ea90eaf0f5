"""P2P over HTTP: the lifecycle, who sees what, transitions refused, bad input (nothing written)."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from typing import Any

import pytest

from isolation_harness.reference_app.app_keys import P2P
from tests.plugins.reference_app import ADMIN_TOKEN, RunningApp, StartApp

OFFERS = "/api/p2p/offers"
TRADES = "/api/p2p/trades"
OFFER = {"currency": "BTC", "fiat": "USD", "price": "30000", "amount": "1",
         "min_amount": "0.01", "max_amount": "0.5"}  # fmt: skip
TRADE_FIELDS = {
    "trade_id", "offer_id", "seller_id", "buyer_id", "currency", "fiat", "amount", "price",
    "fiat_total", "fee", "state", "in_progress", "escrow_reference", "created_at", "expires_at",
    "updated_at",
}  # fmt: skip


def assert_error(status: int, body: Any, expected: int, code: str, fragment: str = "") -> None:
    assert status == expected, body
    assert set(body["error"]) == {"code", "message", "service", "request_id"}
    assert body["error"]["code"] == code, body
    assert fragment.lower() in body["error"]["message"].lower(), body


async def balances(api: RunningApp, token: str) -> dict[str, tuple[str, str]]:
    status, body = await api.call("GET", "/api/wallet/balances", token=token)
    assert status == 200, body
    return {b["currency"]: (b["available"], b["escrow"]) for b in body["balances"]}


async def count(api: RunningApp, sql: str, user: uuid.UUID) -> int:
    async with api.app[P2P].db.cursor() as cur:
        await cur.execute(sql, {"user": str(user)})
        row = await cur.fetchone()
        return int(row[0])


async def post_offer(api: RunningApp, token: str, **changes: Any) -> dict[str, Any]:
    status, offer = await api.call("POST", OFFERS, token=token, json={**OFFER, **changes})
    assert status == 201, offer
    return offer


async def open_trade(
    api: RunningApp, token: str, offer_id: str, amount: str = "0.1", key: str | None = None
) -> tuple[int, Any]:
    return await api.call(
        "POST", TRADES, token=token, key=key or secrets.token_hex(8),
        json={"offer_id": offer_id, "amount": amount},
    )  # fmt: skip


async def test_offer_trade_paid_release_over_http(api: RunningApp) -> None:
    seller_id, seller = await api.new_user(funds={"BTC": "1"})
    buyer_id, buyer = await api.new_user()

    offer = await post_offer(api, seller, currency="BTC", price="30000.5")
    assert (offer["state"], offer["remaining"], offer["seller_id"]) == (
        "open", "1", str(seller_id),
    )  # fmt: skip
    status, listed = await api.call("GET", f"{OFFERS}?currency=BTC&fiat=USD&limit=500", token=buyer)
    assert status == 200, listed
    assert offer["offer_id"] in [o["offer_id"] for o in listed["offers"]]
    status, one = await api.call("GET", f"{OFFERS}/{offer['offer_id']}", token=buyer)
    assert (status, one) == (200, offer)

    key = secrets.token_hex(8)
    status, trade = await open_trade(api, buyer, offer["offer_id"], "0.2", key)
    assert status == 201, trade
    assert set(trade) == TRADE_FIELDS
    assert (trade["state"], trade["amount"], trade["fiat_total"], trade["buyer_id"]) == (
        "open", "0.2", "6000.1", str(buyer_id),
    )  # fmt: skip
    status, replay = await open_trade(api, buyer, offer["offer_id"], "0.2", key)
    assert (status, replay["trade_id"]) == (200, trade["trade_id"])
    assert (await balances(api, seller))["BTC"] == ("0.8", "0.2")

    path = f"{TRADES}/{trade['trade_id']}"
    status, seen = await api.call("GET", path, token=seller)
    assert (status, seen["state"]) == (200, "open")
    status, paid = await api.call("POST", f"{path}/paid", token=buyer)
    assert (status, paid["state"]) == (200, "paid"), paid
    status, released = await api.call("POST", f"{path}/release", token=seller)
    assert (status, released["state"], released["fee"]) == (200, "released", "0.002"), released
    assert (await balances(api, buyer))["BTC"] == ("0.198", "0")
    assert (await balances(api, seller))["BTC"] == ("0.8", "0")

    status, events = await api.call("GET", f"{path}/events", token=buyer)
    assert [e["state"] for e in events["events"]] == ["pending", "open", "paid", "released"]
    status, mine = await api.call("GET", TRADES, token=seller)
    assert trade["trade_id"] in [t["trade_id"] for t in mine["trades"]]


async def test_dispute_resolved_by_the_admin_over_http(api: RunningApp) -> None:
    _, seller = await api.new_user(funds={"BTC": "1"})
    _, buyer = await api.new_user()
    offer = await post_offer(api, seller)
    _, trade = await open_trade(api, buyer, offer["offer_id"], "0.5")
    path = f"{TRADES}/{trade['trade_id']}"
    await api.call("POST", f"{path}/paid", token=buyer)
    status, disputed = await api.call("POST", f"{path}/dispute", token=seller)
    assert (status, disputed["state"]) == (200, "disputed"), disputed

    resolve = f"/api/admin/p2p/trades/{trade['trade_id']}/resolve"
    status, body = await api.call("POST", resolve, token=buyer, json={"winner": "buyer"})
    assert_error(status, body, 403, "forbidden", "admin")
    status, body = await api.call("POST", resolve, json={"winner": "buyer"})
    assert_error(status, body, 401, "unauthorized")
    status, body = await api.call("POST", resolve, token=ADMIN_TOKEN, json={"winner": "nobody"})
    assert_error(status, body, 400, "invalid_field", "winner")
    status, resolved = await api.call("POST", resolve, token=ADMIN_TOKEN, json={"winner": "seller"})
    assert (status, resolved["state"], resolved["fee"]) == (200, "resolved_seller", None)
    assert (await balances(api, seller))["BTC"] == ("1", "0")
    status, body = await api.call("POST", resolve, token=ADMIN_TOKEN, json={"winner": "buyer"})
    assert_error(status, body, 409, "invalid_transition")


async def test_a_stranger_gets_404(api: RunningApp) -> None:
    _, seller = await api.new_user(funds={"BTC": "1"})
    _, buyer = await api.new_user()
    _, stranger = await api.new_user()
    offer = await post_offer(api, seller)
    _, trade = await open_trade(api, buyer, offer["offer_id"])
    path = f"{TRADES}/{trade['trade_id']}"
    for method, url in (("GET", path), ("GET", f"{path}/events"), ("POST", f"{path}/paid"),
                        ("POST", f"{path}/cancel"), ("POST", f"{path}/dispute"),
                        ("GET", f"{TRADES}/{uuid.uuid4()}"), ("GET", f"{TRADES}/not-a-uuid"),
                        ("GET", f"{OFFERS}/{uuid.uuid4()}")):  # fmt: skip
        status, body = await api.call(method, url, token=stranger)
        assert status == 404, (method, url, body)
        assert body["error"]["service"] in {"p2p", "app"}
    status, seen = await api.call("GET", path, token=buyer)
    assert (status, seen["state"]) == (200, "open")


async def test_refused_transitions(api: RunningApp) -> None:
    _, seller = await api.new_user(funds={"BTC": "1"})
    _, buyer = await api.new_user()
    offer = await post_offer(api, seller)
    _, trade = await open_trade(api, buyer, offer["offer_id"])
    path = f"{TRADES}/{trade['trade_id']}"

    status, body = await api.call("POST", f"{path}/release", token=seller)
    assert_error(status, body, 409, "invalid_transition", "open")
    status, body = await api.call("POST", f"{path}/paid", token=seller)
    assert_error(status, body, 403, "not_allowed", "seller")
    status, body = await api.call("POST", f"{path}/paid", token=ADMIN_TOKEN)
    assert_error(status, body, 403, "forbidden", "user token")
    status, body = await api.call("POST", f"{path}/cancel", token=buyer)
    assert (status, body["state"]) == (200, "cancelled")
    status, body = await api.call("POST", f"{path}/paid", token=buyer)
    assert_error(status, body, 409, "invalid_transition", "cancelled")
    assert (await balances(api, seller))["BTC"] == ("1", "0")

    status, body = await api.call("POST", f"{OFFERS}/{offer['offer_id']}/cancel", token=buyer)
    assert_error(status, body, 403, "not_allowed")
    status, body = await api.call("POST", f"{OFFERS}/{offer['offer_id']}/cancel", token=seller)
    assert (status, body["state"]) == (200, "cancelled")
    status, body = await open_trade(api, buyer, offer["offer_id"])
    assert_error(status, body, 409, "offer_closed")


async def test_offer_never_oversold_over_http(api: RunningApp) -> None:
    _, seller = await api.new_user(funds={"BTC": "1"})
    offer = await post_offer(api, seller, amount="0.3", min_amount="0.1", max_amount="0.1")
    buyers = [(await api.new_user())[1] for _ in range(6)]
    answers = await asyncio.gather(*(open_trade(api, b, offer["offer_id"]) for b in buyers))
    assert sorted(status for status, _ in answers) == [201] * 3 + [409] * 3
    assert {b["error"]["code"] for s, b in answers if s == 409} == {"offer_exhausted"}
    assert (await balances(api, seller))["BTC"] == ("0.7", "0.3")


BAD_OFFERS: list[tuple[str, Any, str, str]] = [
    ("float amount", {**OFFER, "amount": 0.5}, "invalid_field", "amount"),
    ("bool amount", {**OFFER, "amount": True}, "invalid_field", "amount"),
    ("list price", {**OFFER, "price": ["1"]}, "invalid_field", "price"),
    ("numeric currency", {**OFFER, "currency": 5}, "invalid_field", "currency"),
    ("zero amount", {**OFFER, "amount": "0"}, "invalid_amount", "positive"),
    ("negative price", {**OFFER, "price": "-1"}, "invalid_amount", "plain decimal string"),
    ("not a number", {**OFFER, "amount": "lots"}, "invalid_amount", "plain decimal string"),
    ("infinite", {**OFFER, "amount": "Infinity"}, "invalid_amount", "plain decimal string"),
    ("too precise amount", {**OFFER, "amount": "0.000000001"}, "invalid_amount", "8 decimal"),
    ("too precise price", {**OFFER, "price": "1.001"}, "invalid_amount", "2 decimal"),
    ("too large", {**OFFER, "amount": "1000000000000000"}, "invalid_amount", "less than"),
    # each value accepted, their product past what any amount may be (numeric(38,18), and the
    # 28 digits a decimal rounds to): refused here, not a failure when a trade is opened
    (
        "worth too much",
        {**OFFER, "amount": "999999999999999", "price": "999999999999999", "max_amount": "1"},
        "invalid_terms",
        "worth more than 1000000000000000 USD",
    ),
    (
        "worth a cent too much",
        {**OFFER, "amount": "1000000000", "price": "1000000.01", "max_amount": "1"},
        "invalid_terms",
        "worth more",
    ),
    ("unknown currency", {**OFFER, "currency": "DOGE"}, "invalid_currency", "DOGE"),
    ("unknown fiat", {**OFFER, "fiat": "JPY"}, "invalid_currency", "fiat"),
    ("fiat as currency", {**OFFER, "currency": "USD"}, "invalid_currency", "fiat"),
    ("min above max", {**OFFER, "min_amount": "0.6"}, "invalid_terms", "min_amount"),
    ("max above amount", {**OFFER, "max_amount": "2"}, "invalid_terms", "max_amount"),
    ("extra field", {**OFFER, "side": "buy"}, "invalid_field", "side"),
    ("missing field", {k: v for k, v in OFFER.items() if k != "price"}, "invalid_field", "price"),
    ("array body", [OFFER], "invalid_body", "object"),
    ("malformed body", b"{not json", "invalid_body", "json"),
    ("no body", None, "invalid_body", "required"),
]


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [case[1:] for case in BAD_OFFERS],
    ids=[case[0] for case in BAD_OFFERS],
)
async def test_bad_offers_are_refused_and_nothing_is_written(
    api: RunningApp, body: Any, code: str, fragment: str
) -> None:
    seller_id, seller = await api.new_user(funds={"BTC": "1"})
    if isinstance(body, bytes):
        status, answer = await api.call(
            "POST", OFFERS, token=seller, data=body, headers={"Content-Type": "application/json"}
        )
    else:
        status, answer = await api.call("POST", OFFERS, token=seller, json=body)
    assert_error(status, answer, 400, code, fragment)
    assert await count(api, "SELECT count(*) FROM p2p.offers WHERE seller = %(user)s",
                       seller_id) == 0  # fmt: skip


BAD_TRADES: list[tuple[str, dict[str, Any], str, str]] = [
    ("float amount", {"amount": 0.1}, "invalid_field", "amount"),
    ("zero amount", {"amount": "0"}, "invalid_amount", "positive"),
    ("negative amount", {"amount": "-0.1"}, "invalid_amount", "plain decimal"),
    ("too precise", {"amount": "0.100000001"}, "invalid_amount", "8 decimal"),
    ("below the offer's min", {"amount": "0.001"}, "invalid_amount", "between"),
    ("above the offer's max", {"amount": "0.6"}, "invalid_amount", "between"),
    ("malformed offer id", {"offer_id": "nope"}, "invalid_field", "offer_id"),
    ("extra field", {"price": "1"}, "invalid_field", "price"),
]


@pytest.mark.parametrize(
    ("change", "code", "fragment"),
    [case[1:] for case in BAD_TRADES],
    ids=[case[0] for case in BAD_TRADES],
)
async def test_bad_trades_are_refused_and_nothing_is_written(
    api: RunningApp, change: dict[str, Any], code: str, fragment: str
) -> None:
    _, seller = await api.new_user(funds={"BTC": "1"})
    buyer_id, buyer = await api.new_user()
    offer = await post_offer(api, seller)
    body = {"offer_id": offer["offer_id"], "amount": "0.1", **change}
    status, answer = await api.call("POST", TRADES, token=buyer, key="k1", json=body)
    assert_error(status, answer, 400, code, fragment)
    assert await count(api, "SELECT count(*) FROM p2p.trades WHERE buyer = %(user)s",
                       buyer_id) == 0  # fmt: skip
    assert (await balances(api, seller))["BTC"] == ("1", "0")
    _, after = await api.call("GET", f"{OFFERS}/{offer['offer_id']}", token=buyer)
    assert after["remaining"] == "1"


async def test_an_offer_worth_the_largest_amount_trades_all_of_it(api: RunningApp) -> None:
    """The largest offer accepted: all of it bought in one trade, its total exact."""
    _, seller = await api.new_user(funds={"BTC": "1000000000"})
    _, buyer = await api.new_user()
    offer = await post_offer(api, seller, amount="1000000000", price="1000000",
                             min_amount="0.00000001", max_amount="1000000000")  # fmt: skip
    status, trade = await open_trade(api, buyer, offer["offer_id"], amount="1000000000")
    assert status == 201, trade
    assert trade["fiat_total"] == "1000000000000000"
    status, trade = await open_trade(api, buyer, offer["offer_id"], amount="0.00000001")
    assert_error(status, trade, 409, "offer_exhausted")


async def test_trade_requests_refused_before_anything_is_written(api: RunningApp) -> None:
    seller_id, seller = await api.new_user(funds={"BTC": "1"})
    offer = await post_offer(api, seller)
    body = {"offer_id": offer["offer_id"], "amount": "0.1"}
    status, answer = await api.call("POST", TRADES, token=seller, json=body)
    assert_error(status, answer, 400, "missing_idempotency_key", "Idempotency-Key")
    status, answer = await api.call("POST", TRADES, token=seller, key="k", json=body)
    assert_error(status, answer, 400, "own_offer")
    status, answer = await api.call(
        "POST", TRADES, token=seller, key="k", json={**body, "offer_id": str(uuid.uuid4())}
    )
    assert_error(status, answer, 404, "offer_not_found")
    status, answer = await api.call("POST", TRADES, json=body, key="k")
    assert_error(status, answer, 401, "unauthorized")
    assert await count(api, "SELECT count(*) FROM p2p.trades WHERE seller = %(user)s",
                       seller_id) == 0  # fmt: skip

    status, answer = await api.call("GET", f"{OFFERS}?currency=DOGE", token=seller)
    assert_error(status, answer, 400, "invalid_currency", "DOGE")
    status, answer = await api.call("GET", f"{OFFERS}?limit=0", token=seller)
    assert_error(status, answer, 400, "invalid_query", "limit")
    status, answer = await api.call("GET", OFFERS)
    assert_error(status, answer, 401, "unauthorized")


async def test_a_seller_short_of_funds_is_a_conflict_that_tells_no_balance(
    api: RunningApp,
) -> None:
    _, seller = await api.new_user(funds={"BTC": "0.05"})
    _, buyer = await api.new_user()
    offer = await post_offer(api, seller)
    status, answer = await open_trade(api, buyer, offer["offer_id"], "0.1")
    assert_error(status, answer, 409, "seller_cannot_cover")
    assert "0.05" not in answer["error"]["message"]
    assert answer["error"]["service"] == "p2p"


async def test_the_lifecycle_works_on_the_legacy_design(start_app: StartApp) -> None:
    """One shared pool and role: p2p's schema-qualified tables are reached all the same."""
    api = await start_app("legacy")
    _, seller = await api.new_user(funds={"BTC": "1"})
    _, buyer = await api.new_user()
    offer = await post_offer(api, seller)
    status, trade = await open_trade(api, buyer, offer["offer_id"], "0.5")
    assert (status, trade["state"]) == (201, "open"), trade
    path = f"{TRADES}/{trade['trade_id']}"
    assert (await api.call("POST", f"{path}/paid", token=buyer))[0] == 200
    status, released = await api.call("POST", f"{path}/release", token=seller)
    assert (status, released["state"], released["fee"]) == (200, "released", "0.005"), released
    assert (await balances(api, buyer))["BTC"] == ("0.495", "0")
