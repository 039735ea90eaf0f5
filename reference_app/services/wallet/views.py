"""Wallet endpoints: parse, call one use case, respond."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from isolation_harness.reference_app.api_schema import (
    UUID_SCHEMA,
    Schema,
    amount_of_currency,
    limit_query,
)
from isolation_harness.reference_app.app_keys import SETTINGS, TOKENS, WALLET
from isolation_harness.reference_app.http_api import (
    MAX_LIMIT,
    PAGE,
    Route,
    UuidIn,
    idempotency_key,
    query_int,
    read_model,
    respond,
)
from isolation_harness.reference_app.money import parse_amount, parse_currency
from isolation_harness.reference_app.services.wallet.domain import TREASURY, WITHDRAWALS


class CreateUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


class MoveMoney(BaseModel):
    model_config = ConfigDict(extra="forbid")
    currency: str
    amount: StrictStr


class FundUser(MoveMoney):
    user_id: UuidIn


def fund_user_schema(currencies: Mapping[str, int]) -> Schema:
    return amount_of_currency(currencies, {"user_id": UUID_SCHEMA})


async def create_user(request: web.Request) -> web.Response:
    body = await read_model(request, CreateUser)
    user_id = await request.app[WALLET].create_user(body.username)
    token = request.app[TOKENS].issue(user_id)
    return respond({"user_id": user_id, "username": body.username, "token": token}, status=201)


async def balances(request: web.Request) -> web.Response:
    user = request.app[TOKENS].user(request)
    rows = await request.app[WALLET].balances(user)
    return respond(
        {"balances": [{"currency": b.currency, "available": b.available, "escrow": b.escrow}
                      for b in rows]}
    )  # fmt: skip


async def transactions(request: web.Request) -> web.Response:
    user = request.app[TOKENS].user(request)
    limit = query_int(request, "limit", PAGE, 1, MAX_LIMIT)
    return respond({"entries": await request.app[WALLET].entries(user, limit)})


async def withdraw(request: web.Request) -> web.Response:
    user = request.app[TOKENS].user(request)
    key = idempotency_key(request)
    body = await read_model(request, MoveMoney)
    currencies = request.app[SETTINGS].currencies
    currency = parse_currency(body.currency, currencies)
    amount = parse_amount(body.amount, currency, currencies)
    posted = await request.app[WALLET].debit(
        user, currency, amount, sink=WITHDRAWALS, kind="withdrawal",
        idempotency_key=f"withdraw:{user}:{key}",
    )  # fmt: skip
    return respond(
        {"transaction_id": posted.transaction_id, "replayed": posted.replayed,
         "currency": currency, "amount": amount},
        status=200 if posted.replayed else 201,
    )  # fmt: skip


async def fund_user(request: web.Request) -> web.Response:
    request.app[TOKENS].admin(request)
    key = idempotency_key(request)
    body = await read_model(request, FundUser)
    currencies = request.app[SETTINGS].currencies
    currency = parse_currency(body.currency, currencies)
    amount = parse_amount(body.amount, currency, currencies)
    wallet = request.app[WALLET]
    await wallet.require_user(body.user_id)
    posted = await wallet.credit(
        body.user_id, currency, amount, source=TREASURY, kind="funding",
        idempotency_key=f"fund:{body.user_id}:{key}",  # the key is the admin's, per user
    )  # fmt: skip
    return respond(
        {"transaction_id": posted.transaction_id, "replayed": posted.replayed,
         "user_id": body.user_id, "currency": currency, "amount": amount},
        status=200 if posted.replayed else 201,
    )  # fmt: skip


ROUTES = [
    Route("POST", "/api/users", create_user, "Create a user and get a bearer token", "users",
          auth="none", body=CreateUser, responses={201: "user created", 409: "username taken"}),
    Route("GET", "/api/wallet/balances", balances, "Balances per currency", "wallet"),
    Route("GET", "/api/wallet/transactions", transactions, "Ledger entries, newest first",
          "wallet", query=limit_query),
    Route("POST", "/api/wallet/withdraw", withdraw, "Withdraw (debit without overdraft)",
          "wallet", body=MoveMoney, schema=amount_of_currency, idempotent=True,
          responses={201: "debited", 200: "debited before (replayed)",
                     409: "insufficient funds, or Idempotency-Key used for another amount"}),
    Route("POST", "/api/admin/credit", fund_user, "Fund a user from the treasury", "admin",
          auth="admin", body=FundUser, schema=fund_user_schema, idempotent=True,
          responses={201: "credited", 200: "credited before (replayed)", 404: "no such user",
                     409: "Idempotency-Key used for another amount"}),
]  # fmt: skip
