"""P2P endpoints: parse, call one use case, respond.

Fiat currencies are a small fixed set (``FIAT_CURRENCIES`` in the domain: USD, EUR, GBP, two
decimal places for a price), apart from the wallet's currencies: a fiat price is paid
outside the platform, so it needs no wallet balance.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StrictStr

from isolation_harness.reference_app.api_schema import (
    UUID_SCHEMA,
    Schema,
    amount_schema,
    const,
    currency_schema,
    limit_query,
    object_schema,
    one_of,
)
from isolation_harness.reference_app.app_keys import P2P, SETTINGS, TOKENS
from isolation_harness.reference_app.http_api import (
    MAX_LIMIT,
    PAGE,
    Route,
    UuidIn,
    idempotency_key,
    path_uuid,
    query_int,
    read_model,
    respond,
)
from isolation_harness.reference_app.money import parse_amount, parse_currency
from isolation_harness.reference_app.services.p2p.domain import FIAT_CURRENCIES, Actor, Offer, Trade

#: an amount as sent: a decimal string (preferred) or an integer, never a float or a bool
AmountIn = StrictStr


class PostOffer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    currency: StrictStr
    fiat: StrictStr
    price: AmountIn
    amount: AmountIn
    min_amount: AmountIn | None = None
    max_amount: AmountIn | None = None


class OpenTrade(BaseModel):
    model_config = ConfigDict(extra="forbid")
    offer_id: UuidIn
    amount: AmountIn


class ResolveDispute(BaseModel):
    model_config = ConfigDict(extra="forbid")
    winner: Literal["buyer", "seller"]


def offer_schema(currencies: Mapping[str, int]) -> Schema:
    """A crypto currency and another fiat one; the amounts in the places of the one, the
    price in the places of the other."""
    variants = []
    for currency, places in currencies.items():
        coins = amount_schema(places)
        bound = {"oneOf": [coins, {"type": "null", "description": "the default"}]}
        for fiat, fiat_places in FIAT_CURRENCIES.items():
            if fiat == currency:
                continue
            properties = {"currency": const(currency), "fiat": const(fiat),
                          "price": amount_schema(fiat_places), "amount": coins,
                          "min_amount": bound, "max_amount": bound}  # fmt: skip
            variants.append(object_schema(properties, ["currency", "fiat", "price", "amount"]))
    return one_of(variants, "an offer's terms: each amount in the places of its currency")


def trade_schema(currencies: Mapping[str, int]) -> Schema:
    finest = max(currencies.values())
    return object_schema(
        {"offer_id": UUID_SCHEMA, "amount": amount_schema(finest)},
        ["offer_id", "amount"],
    )


def offers_query(currencies: Mapping[str, int]) -> Schema:
    return {"currency": currency_schema(currencies), "fiat": currency_schema(FIAT_CURRENCIES),
            **limit_query(currencies)}  # fmt: skip


OFFER_RULES = {
    "invalid_terms": "min_amount (by default the currency's smallest unit) at most "
    "max_amount (by default the amount) at most amount, and amount times price at most 10^15",
}
TRADE_RULES = {
    "invalid_amount": "the amount has at most the decimal places of the offer's currency, "
    "and lies between the offer's min_amount and max_amount",
    "own_offer": "not on your own offer",
}


def offer_json(offer: Offer) -> dict[str, Any]:
    return {
        "offer_id": offer.id, "seller_id": offer.seller, "currency": offer.currency,
        "fiat": offer.fiat, "price": offer.price, "amount": offer.amount,
        "remaining": offer.remaining, "min_amount": offer.min_amount,
        "max_amount": offer.max_amount, "state": offer.state, "created_at": offer.created_at,
    }  # fmt: skip


def trade_json(trade: Trade) -> dict[str, Any]:
    return {
        "trade_id": trade.id, "offer_id": trade.offer_id, "seller_id": trade.seller,
        "buyer_id": trade.buyer, "currency": trade.currency, "fiat": trade.fiat,
        "amount": trade.amount, "price": trade.price, "fiat_total": trade.fiat_total,
        "fee": trade.fee, "state": trade.state, "in_progress": trade.moving_to,
        "escrow_reference": trade.escrow_reference, "created_at": trade.created_at,
        "expires_at": trade.expires_at, "updated_at": trade.updated_at,
    }  # fmt: skip


# -- offers -------------------------------------------------------------------------------


async def post_offer(request: web.Request) -> web.Response:
    seller = request.app[TOKENS].user(request)
    body = await read_model(request, PostOffer)
    currencies = request.app[SETTINGS].currencies
    currency = parse_currency(body.currency, currencies)
    fiat = parse_currency(body.fiat, FIAT_CURRENCIES, field="fiat")
    offer = await request.app[P2P].post_offer(
        seller,
        currency=currency,
        fiat=fiat,
        price=parse_amount(body.price, fiat, FIAT_CURRENCIES, field="price"),
        amount=parse_amount(body.amount, currency, currencies),
        min_amount=_optional_amount(body.min_amount, currency, currencies, "min_amount"),
        max_amount=_optional_amount(body.max_amount, currency, currencies, "max_amount"),
    )
    return respond(offer_json(offer), status=201)


async def list_offers(request: web.Request) -> web.Response:
    request.app[TOKENS].user(request)
    currency = request.query.get("currency")
    fiat = request.query.get("fiat")
    offers = await request.app[P2P].offers(
        currency=parse_currency(currency, request.app[SETTINGS].currencies)
        if currency is not None else None,
        fiat=parse_currency(fiat, FIAT_CURRENCIES, field="fiat") if fiat is not None else None,
        limit=query_int(request, "limit", PAGE, 1, MAX_LIMIT),
    )  # fmt: skip
    return respond({"offers": [offer_json(o) for o in offers]})


async def get_offer(request: web.Request) -> web.Response:
    request.app[TOKENS].user(request)
    offer = await request.app[P2P].offer(path_uuid(request, "offer_id"))
    return respond(offer_json(offer))


async def cancel_offer(request: web.Request) -> web.Response:
    seller = request.app[TOKENS].user(request)
    offer = await request.app[P2P].cancel_offer(path_uuid(request, "offer_id"), seller)
    return respond(offer_json(offer))


# -- trades -------------------------------------------------------------------------------


async def open_trade(request: web.Request) -> web.Response:
    buyer = request.app[TOKENS].user(request)
    key = idempotency_key(request)
    body = await read_model(request, OpenTrade)
    p2p = request.app[P2P]
    # The amount's precision is the offer's currency's: read the offer to know it.
    offer = await p2p.offer(body.offer_id)
    amount = parse_amount(body.amount, offer.currency, request.app[SETTINGS].currencies)
    trade, replayed = await p2p.open_trade(buyer, offer.id, amount, key)
    return respond(trade_json(trade), status=200 if replayed else 201)


async def my_trades(request: web.Request) -> web.Response:
    user = request.app[TOKENS].user(request)
    trades = await request.app[P2P].trades(user, query_int(request, "limit", PAGE, 1, MAX_LIMIT))
    return respond({"trades": [trade_json(t) for t in trades]})


async def get_trade(request: web.Request) -> web.Response:
    user = request.app[TOKENS].user(request)
    trade = await request.app[P2P].trade(path_uuid(request, "trade_id"), user)
    return respond(trade_json(trade))


async def trade_history(request: web.Request) -> web.Response:
    user = request.app[TOKENS].user(request)
    events = await request.app[P2P].history(path_uuid(request, "trade_id"), user)
    return respond({"events": events})


async def mark_paid(request: web.Request) -> web.Response:
    user = request.app[TOKENS].user(request)
    trade = await request.app[P2P].mark_paid(path_uuid(request, "trade_id"), user)
    return respond(trade_json(trade))


async def release(request: web.Request) -> web.Response:
    user = request.app[TOKENS].user(request)
    trade = await request.app[P2P].release(path_uuid(request, "trade_id"), user)
    return respond(trade_json(trade))


async def cancel_trade(request: web.Request) -> web.Response:
    user = request.app[TOKENS].user(request)
    trade = await request.app[P2P].cancel_trade(path_uuid(request, "trade_id"), user)
    return respond(trade_json(trade))


async def dispute(request: web.Request) -> web.Response:
    user = request.app[TOKENS].user(request)
    trade = await request.app[P2P].dispute(path_uuid(request, "trade_id"), user)
    return respond(trade_json(trade))


async def resolve_dispute(request: web.Request) -> web.Response:
    request.app[TOKENS].admin(request)
    trade_id = path_uuid(request, "trade_id")
    body = await read_model(request, ResolveDispute)
    trade = await request.app[P2P].resolve_dispute(trade_id, Actor(body.winner))
    return respond(trade_json(trade))


def _optional_amount(
    value: str | int | None, currency: str, currencies: Mapping[str, int], field: str
) -> Decimal | None:
    return None if value is None else parse_amount(value, currency, currencies, field=field)


TRADE = "/api/p2p/trades/{trade_id}"
MOVED = {404: "no such trade (or not yours)", 409: "invalid transition"}

ROUTES = [
    Route("POST", "/api/p2p/offers", post_offer, "Offer crypto for fiat", "p2p",
          body=PostOffer, schema=offer_schema, rules=OFFER_RULES,
          responses={201: "offer created", 400: "bad terms"}),
    Route("GET", "/api/p2p/offers", list_offers,
          "Open offers, cheapest first (?currency=&fiat=&limit=)", "p2p", query=offers_query),
    Route("GET", "/api/p2p/offers/{offer_id}", get_offer, "One offer", "p2p",
          responses={404: "no such offer"}),
    Route("POST", "/api/p2p/offers/{offer_id}/cancel", cancel_offer, "Withdraw your offer",
          "p2p", responses={403: "not your offer", 409: "already cancelled"}),
    Route("POST", "/api/p2p/trades", open_trade,
          "Open a trade on an offer (the seller's funds go to escrow)", "p2p", body=OpenTrade,
          schema=trade_schema, rules=TRADE_RULES, idempotent=True,
          responses={201: "trade opened", 200: "replayed", 404: "no such offer",
                     409: "offer closed or exhausted, too many open trades, or the seller "
                          "cannot cover it"}),
    Route("GET", "/api/p2p/trades", my_trades, "Your trades, newest first", "p2p",
          query=limit_query),
    Route("GET", TRADE, get_trade, "One of your trades", "p2p", responses={404: MOVED[404]}),
    Route("GET", TRADE + "/events", trade_history, "The states a trade went through", "p2p",
          responses={404: MOVED[404]}),
    Route("POST", TRADE + "/paid", mark_paid, "Buyer: the fiat is sent", "p2p",
          responses=MOVED),
    Route("POST", TRADE + "/release", release, "Seller: release the escrow to the buyer",
          "p2p", responses=MOVED),
    Route("POST", TRADE + "/cancel", cancel_trade, "Buyer: cancel before paying", "p2p",
          responses=MOVED),
    Route("POST", TRADE + "/dispute", dispute, "Buyer or seller: contest a paid trade", "p2p",
          responses=MOVED),
    Route("POST", "/api/admin/p2p/trades/{trade_id}/resolve", resolve_dispute,
          "Admin: decide a dispute for the buyer or the seller", "admin", auth="admin",
          body=ResolveDispute, responses=MOVED),
]  # fmt: skip
