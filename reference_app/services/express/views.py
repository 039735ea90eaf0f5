"""Express endpoints: parse, call one use case, respond."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StrictStr

from isolation_harness.reference_app.api_schema import (
    Schema,
    amount_of_currency,
    exchange,
)
from isolation_harness.reference_app.app_keys import EXPRESS, SETTINGS, TOKENS
from isolation_harness.reference_app.http_api import (
    Route,
    idempotency_key,
    path_uuid,
    read_model,
    respond,
)
from isolation_harness.reference_app.money import (
    UNQUOTABLE_RULES,
    parse_amount,
    parse_currency,
    parse_currency_pair,
)
from isolation_harness.reference_app.services.express.domain import Order, Quote


class RequestExpressQuote(BaseModel):
    """Buy ``amount`` of ``buy``, paying in ``pay``; the amount is a decimal string."""

    model_config = ConfigDict(extra="forbid")
    buy: StrictStr
    pay: StrictStr
    amount: StrictStr


class FundLiquidity(BaseModel):
    """Move ``amount`` of ``currency`` from the treasury into the express-buy liquidity."""

    model_config = ConfigDict(extra="forbid")
    currency: StrictStr
    amount: StrictStr


def express_quote_schema(currencies: Mapping[str, int]) -> Schema:
    return exchange(currencies, "buy", "pay")


def _terms(quote: Quote) -> dict[str, Any]:
    """What a quote's buyer gets and pays: in the quote's JSON and in its order's."""
    return {
        "buy": quote.buy_currency,
        "pay": quote.pay_currency,
        "buy_amount": quote.buy_amount,
        "pay_amount": quote.pay_amount,
        "fee": quote.fee,
        "fee_currency": quote.pay_currency,
    }


def quote_json(quote: Quote) -> dict[str, Any]:
    """The JSON form of a quote, with its state as of now."""
    return {
        "quote_id": quote.id,
        "state": quote.state_at(datetime.now(UTC)),
        "pair": quote.pair,
        **_terms(quote),
        "price": quote.price,
        "markup": quote.markup,
        "rate": quote.rate,
        "price_as_of": quote.price_as_of,
        "created_at": quote.created_at,
        "expires_at": quote.expires_at,
    }


def order_json(order: Order) -> dict[str, Any]:
    """The JSON form of an order, with the terms of its quote."""
    quote = order.quote
    return {
        "order_id": order.id,
        "quote_id": quote.id,
        "state": order.state,
        "reason": order.reason,
        **_terms(quote),
        "rate": quote.rate,
        "created_at": order.created_at,
        "filled_at": order.filled_at,
        "transaction_id": order.transaction_id,
    }


async def request_express_quote(request: web.Request) -> web.Response:
    user = request.app[TOKENS].user(request)
    body = await read_model(request, RequestExpressQuote)
    currencies = request.app[SETTINGS].currencies
    buy, pay = parse_currency_pair(body.buy, body.pay, currencies, ("buy", "pay"))
    amount = parse_amount(body.amount, buy, currencies)
    quote = await request.app[EXPRESS].request_quote(user, buy, pay, amount)
    return respond(quote_json(quote), status=201)


async def get_express_quote(request: web.Request) -> web.Response:
    user = request.app[TOKENS].user(request)
    quote = await request.app[EXPRESS].quote(user, path_uuid(request, "quote_id"))
    return respond(quote_json(quote))


async def place_express_order(request: web.Request) -> web.Response:
    user = request.app[TOKENS].user(request)
    key = idempotency_key(request)
    placement = await request.app[EXPRESS].place_order(user, path_uuid(request, "quote_id"), key)
    return respond(
        {**order_json(placement.order), "replayed": placement.replayed},
        status=200 if placement.replayed else 201,
    )


async def get_express_order(request: web.Request) -> web.Response:
    user = request.app[TOKENS].user(request)
    order = await request.app[EXPRESS].order(user, path_uuid(request, "order_id"))
    return respond(order_json(order))


async def fund_liquidity(request: web.Request) -> web.Response:
    request.app[TOKENS].admin(request)
    key = idempotency_key(request)
    body = await read_model(request, FundLiquidity)
    currencies = request.app[SETTINGS].currencies
    currency = parse_currency(body.currency, currencies)
    amount = parse_amount(body.amount, currency, currencies)
    express = request.app[EXPRESS]
    posted = await express.fund_liquidity(currency, amount, key)
    levels = await express.liquidity()
    return respond(
        {"transaction_id": posted.transaction_id, "replayed": posted.replayed,
         "currency": currency, "amount": amount, "liquidity": levels[currency]},
        status=200 if posted.replayed else 201,
    )  # fmt: skip


async def liquidity_levels(request: web.Request) -> web.Response:
    request.app[TOKENS].admin(request)
    levels = await request.app[EXPRESS].liquidity()
    return respond(
        {"liquidity": [{"currency": currency, "available": level}
                       for currency, level in levels.items()]}
    )  # fmt: skip


ROUTES = [
    Route("POST", "/api/admin/liquidity", fund_liquidity,
          "Fund the express-buy liquidity from the treasury", "admin", auth="admin",
          body=FundLiquidity, schema=amount_of_currency, idempotent=True,
          responses={201: "funded", 200: "funded before (replayed)", 400: "bad currency or amount",
                     409: "Idempotency-Key used for another currency or amount"}),
    Route("GET", "/api/admin/liquidity", liquidity_levels,
          "Express-buy liquidity per currency", "admin", auth="admin"),
    Route("POST", "/api/express/quotes", request_express_quote,
          "Quote an express buy at the current price plus the markup", "express",
          body=RequestExpressQuote, schema=express_quote_schema, rules=UNQUOTABLE_RULES,
          responses={201: "quoted", 400: "bad currency or amount",
                     503: "price source unavailable or stale"}),
    Route("GET", "/api/express/quotes/{quote_id}", get_express_quote,
          "One of the caller's express quotes", "express",
          responses={404: "no such quote (or someone else's)"}),
    Route("POST", "/api/express/quotes/{quote_id}/orders", place_express_order,
          "Order at a quote's terms (at most one order per quote; a repeat answers it)",
          "express", idempotent=True,
          responses={201: "filled", 200: "filled before (replayed)",
                     404: "no such quote (or someone else's)",
                     409: "insufficient liquidity or funds, or Idempotency-Key reused",
                     410: "quote expired"}),
    Route("GET", "/api/express/orders/{order_id}", get_express_order,
          "One of the caller's express orders", "express",
          responses={404: "no such order (or someone else's)"}),
]  # fmt: skip
