"""Deposit endpoints (names as in the source document: /api/nowpayments/...)."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StrictStr

from isolation_harness.reference_app.api_schema import (
    Schema,
    amount_of_currency,
    limit_query,
)
from isolation_harness.reference_app.app_keys import DEPOSITS, SETTINGS, TOKENS
from isolation_harness.reference_app.errors import BadRequest
from isolation_harness.reference_app.http_api import (
    MAX_LIMIT,
    PAGE,
    Route,
    idempotency_key,
    path_uuid,
    query_int,
    read_model,
    respond,
)
from isolation_harness.reference_app.money import parse_amount, parse_currency
from isolation_harness.reference_app.services.deposits.domain import (
    PAYMENT_ID_DIGITS,
    PAYMENT_ID_PATTERN,
    Deposit,
    DepositStatus,
)
from isolation_harness.reference_app.services.deposits.provider import PROVIDER_TICKERS

IPN_SIGNATURE_HEADER = "x-nowpayments-sig"


class CreateDeposit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    currency: str
    amount: StrictStr


def deposit_schema(currencies: Mapping[str, int]) -> Schema:
    """A deposit in one of the provider's currencies, its amount in that one's places."""
    return amount_of_currency({c: p for c, p in currencies.items() if c in PROVIDER_TICKERS})


def ipn_schema(_: Mapping[str, int]) -> Schema:
    """A NOWPayments callback: what the app reads of it (the provider sends more)."""
    return {
        "type": "object",
        "properties": {
            "payment_id": {
                "oneOf": [
                    {"type": "integer", "minimum": 0, "maximum": 10**PAYMENT_ID_DIGITS - 1},
                    {"type": "string", "pattern": PAYMENT_ID_PATTERN},
                ]
            },
            "payment_status": {"type": "string", "enum": [s.value for s in DepositStatus]},
        },
        "required": ["payment_id", "payment_status"],
    }


def _public(deposit: Deposit) -> dict[str, object]:
    return {
        "id": deposit.id,
        "user_id": deposit.user_id,
        "currency": deposit.currency,
        "amount": deposit.amount,
        "status": deposit.status.value,
        "provider_payment_id": deposit.provider_payment_id,
        "pay_address": deposit.pay_address,
        "pay_amount": deposit.pay_amount,
        "pay_currency": deposit.pay_currency,
        "credited_at": deposit.credited_at,
        "created_at": deposit.created_at,
    }


async def create_deposit(request: web.Request) -> web.Response:
    user = request.app[TOKENS].user(request)
    key = idempotency_key(request)
    body = await read_model(request, CreateDeposit)
    currencies = request.app[SETTINGS].currencies
    currency = parse_currency(body.currency, currencies)
    if currency not in PROVIDER_TICKERS:
        raise BadRequest(
            f"currency: deposits are taken in {', '.join(PROVIDER_TICKERS)}, not {currency}",
            code="invalid_currency",
        )
    amount = parse_amount(body.amount, currency, currencies)
    deposit, replayed = await request.app[DEPOSITS].create_deposit(user, currency, amount, key)
    return respond({**_public(deposit), "replayed": replayed}, status=200 if replayed else 201)


async def get_deposit(request: web.Request) -> web.Response:
    user = request.app[TOKENS].user(request)
    deposit = await request.app[DEPOSITS].deposit(user, path_uuid(request, "deposit_id"))
    return respond(_public(deposit))


async def list_deposits(request: web.Request) -> web.Response:
    user = request.app[TOKENS].user(request)
    limit = query_int(request, "limit", PAGE, 1, MAX_LIMIT)
    found = await request.app[DEPOSITS].deposits(user, limit)
    return respond({"deposits": [_public(d) for d in found]})


async def ipn(request: web.Request) -> web.Response:
    raw = await request.read()
    signature = request.headers.get(IPN_SIGNATURE_HEADER)
    outcome, deposit = await request.app[DEPOSITS].apply_ipn(raw, signature)
    return respond({"outcome": outcome.value, "deposit_id": deposit.id, "status": deposit.status})


ROUTES = [
    Route("POST", "/api/nowpayments/create-deposit", create_deposit,
          "Create a deposit address at the payment provider", "deposits", body=CreateDeposit,
          idempotent=True, schema=deposit_schema,
          responses={201: "created", 200: "replayed (same Idempotency-Key)",
                     409: "Idempotency-Key used for another deposit",
                     502: "the provider refused the request",
                     503: "provider or database unavailable"}),
    Route("GET", "/api/nowpayments/deposits", list_deposits, "The caller's deposits",
          "deposits", query=limit_query),
    Route("GET", "/api/nowpayments/deposits/{deposit_id}", get_deposit, "One deposit",
          "deposits", responses={404: "no such deposit (or someone else's)"}),
    Route("POST", "/api/nowpayments/ipn", ipn, "Payment status callback (signed with "
          "HMAC-SHA512 in x-nowpayments-sig)", "deposits", auth="signature", schema=ipn_schema,
          rules={"invalid_ipn": "no NUL character in any key or string (the callback is kept "
                                "as evidence in PostgreSQL's jsonb, which cannot hold one)"},
          headers={IPN_SIGNATURE_HEADER: {"type": "string", "pattern": "^[0-9a-f]{128}$"}},
          responses={200: "applied, repeated or refused", 401: "bad signature",
                     404: "no deposit for the payment",
                     409: "another order, currency or amount than the deposit's (recorded)"}),
]  # fmt: skip
