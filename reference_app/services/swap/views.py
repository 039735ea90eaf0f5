"""Swap endpoints: parse, call one use case, respond."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StrictStr

from isolation_harness.reference_app.api_schema import (
    Schema,
    exchange,
)
from isolation_harness.reference_app.app_keys import SETTINGS, SWAP, TOKENS
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
    parse_currency_pair,
)
from isolation_harness.reference_app.services.swap.domain import Quote


class RequestQuote(BaseModel):
    """Sell ``amount`` of ``sell`` for ``buy``; the amount is a decimal string."""

    model_config = ConfigDict(extra="forbid")
    sell: StrictStr
    buy: StrictStr
    amount: StrictStr


def quote_request_schema(currencies: Mapping[str, int]) -> Schema:
    return exchange(currencies, "sell", "buy")


def quote_json(quote: Quote) -> dict[str, Any]:
    """The JSON form of a quote, with its state as of now."""
    return {
        "quote_id": quote.id,
        "state": quote.state_at(datetime.now(UTC)),
        "pair": quote.pair,
        "sell": quote.sell_currency,
        "buy": quote.buy_currency,
        "sell_amount": quote.sell_amount,
        "buy_amount": quote.buy_amount,
        "fee": quote.fee,
        "fee_currency": quote.sell_currency,
        # what the spread earns the platform (booked to its revenue with the fee)
        "spread_amount": quote.spread_amount,
        "spread_currency": quote.buy_currency,
        "price": quote.price,
        "rate": quote.rate,
        "price_as_of": quote.price_as_of,
        "created_at": quote.created_at,
        "expires_at": quote.expires_at,
        "executed_at": quote.executed_at,
        "transaction_id": quote.transaction_id,
    }


async def request_quote(request: web.Request) -> web.Response:
    user = request.app[TOKENS].user(request)
    body = await read_model(request, RequestQuote)
    currencies = request.app[SETTINGS].currencies
    sell, buy = parse_currency_pair(body.sell, body.buy, currencies, ("sell", "buy"))
    amount = parse_amount(body.amount, sell, currencies)
    quote = await request.app[SWAP].request_quote(user, sell, buy, amount)
    return respond(quote_json(quote), status=201)


async def get_quote(request: web.Request) -> web.Response:
    user = request.app[TOKENS].user(request)
    quote = await request.app[SWAP].quote(user, path_uuid(request, "quote_id"))
    return respond(quote_json(quote))


async def execute_quote(request: web.Request) -> web.Response:
    user = request.app[TOKENS].user(request)
    key = idempotency_key(request)
    execution = await request.app[SWAP].execute_quote(user, path_uuid(request, "quote_id"), key)
    return respond(
        {**quote_json(execution.quote), "replayed": execution.replayed},
        status=200 if execution.replayed else 201,
    )


ROUTES = [
    Route("POST", "/api/swap/quotes", request_quote, "Quote a swap at the current price",
          "swap", body=RequestQuote, schema=quote_request_schema, rules=UNQUOTABLE_RULES,
          responses={201: "quoted", 400: "bad currency or amount",
                     503: "price source unavailable or stale"}),
    Route("GET", "/api/swap/quotes/{quote_id}", get_quote, "One of the caller's quotes", "swap",
          responses={404: "no such quote (or someone else's)"}),
    Route("POST", "/api/swap/quotes/{quote_id}/execute", execute_quote,
          "Execute a quote (at most once; a repeat answers the first execution)", "swap",
          idempotent=True,
          responses={201: "executed", 200: "executed before (replayed)",
                     404: "no such quote (or someone else's)", 409: "insufficient funds",
                     410: "quote expired"}),
]  # fmt: skip
