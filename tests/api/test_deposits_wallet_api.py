"""Deposits, wallet and users over HTTP: auth, ownership, bad input (nothing written)."""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

import pytest

from isolation_harness.reference_app.app_keys import DEPOSITS, WALLET
from isolation_harness.reference_app.payments_signature import sign
from tests.plugins.reference_app import ADMIN_TOKEN, IPN_SECRET, PaymentsFake, RunningApp

CREATE = "/api/nowpayments/create-deposit"


def assert_error(status: int, body: Any, expected: int, fragment: str = "") -> None:
    assert status == expected, body
    assert set(body["error"]) == {"code", "message", "service", "request_id"}
    assert fragment.lower() in body["error"]["message"].lower(), body


async def deposit_rows(api: RunningApp, user: uuid.UUID) -> int:
    async with api.app[DEPOSITS].db.cursor() as cur:
        await cur.execute("SELECT count(*) FROM deposits.deposits WHERE user_id = %s", (str(user),))
        row = await cur.fetchone()
        return int(row[0])


async def test_user_deposit_flow_over_http(api: RunningApp, payments_fake: PaymentsFake) -> None:
    _user, token = await api.new_user()
    status, created = await api.call(
        "POST", CREATE, token=token, key="dep-1", json={"currency": "BTC", "amount": "0.5"}
    )
    assert status == 201, created
    assert created["currency"] == "BTC"
    assert created["amount"] == "0.5"
    assert created["status"] == "waiting"
    assert created["replayed"] is False
    status, again = await api.call(
        "POST", CREATE, token=token, key="dep-1", json={"currency": "BTC", "amount": "0.5"}
    )
    assert status == 200
    assert again["id"] == created["id"]
    assert again["replayed"] is True

    await payments_fake.progress(created["provider_payment_id"], "finished", through=True)
    status, seen = await api.call("GET", f"/api/nowpayments/deposits/{created['id']}", token=token)
    assert (status, seen["status"]) == (200, "finished")
    status, balances = await api.call("GET", "/api/wallet/balances", token=token)
    assert balances["balances"] == [{"currency": "BTC", "available": "0.5", "escrow": "0"}]
    status, listed = await api.call("GET", "/api/nowpayments/deposits", token=token)
    assert [d["id"] for d in listed["deposits"]] == [created["id"]]
    status, entries = await api.call("GET", "/api/wallet/transactions", token=token)
    assert [(e["kind"], e["amount"]) for e in entries["entries"]] == [("deposit", "0.5")]


async def test_user_a_gets_404_on_user_b_deposit(api: RunningApp) -> None:
    _, token_a = await api.new_user()
    _, token_b = await api.new_user()
    status, created = await api.call(
        "POST", CREATE, token=token_b, key="b", json={"currency": "ETH", "amount": "1"}
    )
    assert status == 201
    status, body = await api.call(
        "GET", f"/api/nowpayments/deposits/{created['id']}", token=token_a
    )
    assert_error(status, body, 404, "no such deposit")
    status, body = await api.call("GET", f"/api/nowpayments/deposits/{uuid.uuid4()}", token=token_a)
    assert_error(status, body, 404)
    status, body = await api.call("GET", "/api/nowpayments/deposits/not-a-uuid", token=token_a)
    assert_error(status, body, 404)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 401),
        ({"Authorization": "Bearer nonsense"}, 401),
        ({"Authorization": "Basic dXNlcjpwdw=="}, 401),
        ({"Authorization": f"Bearer u1.{uuid.uuid4()}.forged"}, 401),
        ({"Authorization": f"Bearer {ADMIN_TOKEN}"}, 403),  # the admin is no user
    ],
    ids=["none", "garbage", "basic", "forged", "admin-as-user"],
)
async def test_user_endpoints_need_a_user_token(
    api: RunningApp, headers: dict[str, str], expected: int
) -> None:
    for method, path in [("GET", "/api/wallet/balances"), ("POST", CREATE),
                         ("GET", "/api/nowpayments/deposits")]:  # fmt: skip
        status, body = await api.call(
            method, path, headers=headers, key="k", json={"currency": "BTC", "amount": "1"}
        )
        assert_error(status, body, expected)


async def test_admin_endpoints_need_the_admin_token(api: RunningApp) -> None:
    user, token = await api.new_user()
    payload = {"user_id": str(user), "currency": "BTC", "amount": "1"}
    status, body = await api.call("POST", "/api/admin/credit", token=token, key="x", json=payload)
    assert_error(status, body, 403, "admin token required")
    status, body = await api.call("GET", "/api/_faults", token=token)
    assert_error(status, body, 403)
    status, body = await api.call("GET", "/api/wallet/balances", token=token)
    assert body["balances"] == []


BAD_DEPOSITS: list[tuple[str, Any, int, str]] = [
    ("missing amount", {"currency": "BTC"}, 400, "amount"),
    ("missing currency", {"amount": "1"}, 400, "currency"),
    ("extra field", {"currency": "BTC", "amount": "1", "fee": "0"}, 400, "fee"),
    ("float amount", {"currency": "BTC", "amount": 0.1}, 400, "amount"),
    ("bool amount", {"currency": "BTC", "amount": True}, 400, "amount"),
    ("list amount", {"currency": "BTC", "amount": ["1"]}, 400, "amount"),
    ("zero", {"currency": "BTC", "amount": "0"}, 400, "positive"),
    ("negative", {"currency": "BTC", "amount": "-1"}, 400, "plain decimal string"),
    ("over-precise", {"currency": "BTC", "amount": "0.000000001"}, 400, "8 decimal places"),
    ("over-precise usdt", {"currency": "USDT", "amount": "1.0000001"}, 400, "6 decimal places"),
    ("not a number", {"currency": "BTC", "amount": "one"}, 400, "plain decimal string"),
    ("infinite", {"currency": "BTC", "amount": "Infinity"}, 400, "plain decimal string"),
    ("nan", {"currency": "BTC", "amount": "NaN"}, 400, "plain decimal string"),
    ("huge", {"currency": "BTC", "amount": "1000000000000000"}, 400, "less than"),
    ("unknown currency", {"currency": "DOGE", "amount": "1"}, 400, "unknown currency"),
    ("fiat deposit", {"currency": "USD", "amount": "1"}, 400, "deposits are taken in"),
    ("currency type", {"currency": 42, "amount": "1"}, 400, "currency"),
    ("not an object", ["BTC", "1"], 400, "json object"),
]


@pytest.mark.parametrize(("case", "body", "expected", "reason"), BAD_DEPOSITS,
                         ids=[c[0] for c in BAD_DEPOSITS])  # fmt: skip
async def test_bad_create_deposit_is_4xx_and_writes_nothing(
    api: RunningApp,
    payments_fake: PaymentsFake,
    case: str,
    body: Any,
    expected: int,
    reason: str,
) -> None:
    user, token = await api.new_user()
    status, answer = await api.call(
        "POST", CREATE, token=token, key=f"k-{case.replace(' ', '-')}", json=body
    )
    assert_error(status, answer, expected, reason)
    assert await deposit_rows(api, user) == 0
    assert (await payments_fake.control("GET", "/payments"))["payments"] == []


@pytest.mark.parametrize(
    ("raw", "headers", "expected", "reason"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400, "not valid json"),
        (b"", {"Content-Type": "application/json"}, 400, "body required"),
        (b"\xff\xfe", {"Content-Type": "application/json"}, 400, "not valid json"),
        (b'{"currency": "BTC", "amount": "1"}', {}, 400, "idempotency-key header required"),
    ],
    ids=["malformed", "empty", "binary", "no-idempotency-key"],
)
async def test_malformed_requests(
    api: RunningApp, raw: bytes, headers: dict[str, str], expected: int, reason: str
) -> None:
    user, token = await api.new_user()
    key = None if "idempotency" in reason else "k"
    status, answer = await api.call("POST", CREATE, token=token, key=key, data=raw, headers=headers)
    assert_error(status, answer, expected, reason)
    assert await deposit_rows(api, user) == 0


async def test_oversized_body_is_413(api: RunningApp, start_app: Any) -> None:
    user, token = await api.new_user()
    huge = json.dumps({"currency": "BTC", "amount": "1", "pad": "x" * 100_000})
    status, answer = await api.call(
        "POST", CREATE, token=token, key="k", data=huge,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert_error(status, answer, 413, "too large")
    assert await deposit_rows(api, user) == 0


async def test_bad_ipn_signature_is_refused_and_nothing_written(
    api: RunningApp, payments_fake: PaymentsFake
) -> None:
    user, token = await api.new_user()
    status, created = await api.call(
        "POST", CREATE, token=token, key="k", json={"currency": "BTC", "amount": "1"}
    )
    payload = {"payment_id": int(created["provider_payment_id"]), "payment_status": "finished"}
    body = json.dumps(payload).encode()
    cases = [
        None,
        "00" * 64,
        sign(payload, "the-wrong-secret"),
        sign({**payload, "payment_status": "failed"}, IPN_SECRET),
    ]
    for signature in cases:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["x-nowpayments-sig"] = signature
        status, answer = await api.call("POST", "/api/nowpayments/ipn", data=body, headers=headers)
        assert_error(status, answer, 401, "invalid ipn signature")
    async with api.app[DEPOSITS].db.cursor() as cur:
        await cur.execute(
            "SELECT count(*) FROM deposits.ipn_events WHERE provider_payment_id = %s",
            (created["provider_payment_id"],),
        )
        assert (await cur.fetchone())[0] == 0
    assert (await api.app[WALLET].balance(user, "BTC")).available == 0
    status, seen = await api.call("GET", f"/api/nowpayments/deposits/{created['id']}", token=token)
    assert seen["status"] == "waiting"


async def test_signed_but_malformed_ipn_is_400(api: RunningApp) -> None:
    for payload in ({"payment_status": "finished"}, {"payment_id": 1, "payment_status": "paid"}):
        status, answer = await api.call(
            "POST", "/api/nowpayments/ipn", data=json.dumps(payload).encode(),
            headers={"x-nowpayments-sig": sign(payload, IPN_SECRET)},
        )  # fmt: skip
        assert_error(status, answer, 400, "malformed ipn")


BAD_FUNDING: list[tuple[str, dict[str, Any], int, str]] = [
    ("unknown user", {"currency": "BTC", "amount": "1"}, 404, "no such user"),
    ("zero", {"currency": "BTC", "amount": "0"}, 400, "positive"),
    ("bad user id", {"user_id": "nope", "currency": "BTC", "amount": "1"}, 400, "user_id"),
]


@pytest.mark.parametrize(("case", "body", "expected", "reason"), BAD_FUNDING,
                         ids=[c[0] for c in BAD_FUNDING])  # fmt: skip
async def test_bad_funding(
    api: RunningApp, case: str, body: dict[str, Any], expected: int, reason: str
) -> None:
    body = {"user_id": str(uuid.uuid4()), **body}
    status, answer = await api.call(
        "POST", "/api/admin/credit", token=ADMIN_TOKEN, key=secrets.token_hex(6), json=body
    )
    assert_error(status, answer, expected, reason)


WITHDRAW = "/api/wallet/withdraw"
CREDIT = "/api/admin/credit"


async def test_withdraw_never_overdraws(api: RunningApp) -> None:
    _, token = await api.new_user({"USDT": "5"})
    status, body = await api.call(
        "POST",
        "/api/wallet/withdraw",
        token=token,
        key="w1",
        json={"currency": "USDT", "amount": "6"},
    )
    assert_error(status, body, 409, "insufficient")
    status, body = await api.call(
        "POST",
        "/api/wallet/withdraw",
        token=token,
        key="w2",
        json={"currency": "USDT", "amount": "5"},
    )
    assert status == 201, body
    status, balances = await api.call("GET", "/api/wallet/balances", token=token)
    assert balances["balances"][0]["available"] == "0"


async def balance_of(api: RunningApp, token: str, currency: str) -> str:
    status, body = await api.call("GET", "/api/wallet/balances", token=token)
    assert status == 200, body
    return next((b["available"] for b in body["balances"] if b["currency"] == currency), "0")


async def test_a_withdrawal_key_means_one_withdrawal(api: RunningApp) -> None:
    """The same key again: the first withdrawal, replayed; with another amount or currency:
    409 idempotency_key_reused, and nothing more moves."""
    _, token = await api.new_user({"USDT": "10", "BTC": "1"})
    first = {"currency": "USDT", "amount": "4"}
    status, body = await api.call("POST", WITHDRAW, token=token, key="w", json=first)
    assert status == 201, body
    status, again = await api.call("POST", WITHDRAW, token=token, key="w", json=first)
    assert (status, again["replayed"], again["transaction_id"]) == (
        200, True, body["transaction_id"])  # fmt: skip
    for other in ({"currency": "USDT", "amount": "5"}, {"currency": "BTC", "amount": "4"}):
        status, refused = await api.call("POST", WITHDRAW, token=token, key="w", json=other)
        assert_error(status, refused, 409, "idempotency key already used")
        assert refused["error"]["code"] == "idempotency_key_reused"
    assert await balance_of(api, token, "USDT") == "6"
    assert await balance_of(api, token, "BTC") == "1"


async def test_an_admin_credit_key_means_one_credit_per_user(api: RunningApp) -> None:
    """The admin's key is scoped to the user credited: the same key credits another user
    once each; for the same user with another amount it is 409, and nothing moves."""
    alice, alice_token = await api.new_user()
    bob, bob_token = await api.new_user()

    async def credit(user: uuid.UUID, amount: str) -> tuple[int, Any]:
        body = {"user_id": str(user), "currency": "USDT", "amount": amount}
        return await api.call("POST", CREDIT, token=ADMIN_TOKEN, key="grant", json=body)

    assert (await credit(alice, "7"))[0] == 201
    assert (await credit(bob, "7"))[0] == 201
    assert (await credit(alice, "7"))[0] == 200  # replayed
    status, refused = await credit(alice, "70")
    assert_error(status, refused, 409, "idempotency key already used")
    assert refused["error"]["code"] == "idempotency_key_reused"
    assert await balance_of(api, alice_token, "USDT") == "7"
    assert await balance_of(api, bob_token, "USDT") == "7"


async def test_usernames_are_unique_and_validated(api: RunningApp) -> None:
    name = f"alice_{secrets.token_hex(4)}"
    assert (await api.call("POST", "/api/users", json={"username": name}))[0] == 201
    status, body = await api.call("POST", "/api/users", json={"username": name})
    assert_error(status, body, 409, "taken")
    for bad in ["", "ab", "has space", "x" * 65, 7]:
        status, body = await api.call("POST", "/api/users", json={"username": bad})
        assert_error(status, body, 400, "username")
