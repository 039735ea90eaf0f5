"""The money oracle on a real PostgreSQL: the facts it reads are what the app really stored
(every money-moving kind the load makes, through the app over HTTP and the real provider
fake), and a broken build — a row altered or deleted, a withdrawal applied twice, a payment
the app let expire — makes the invariants fail, naming the operation."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from isolation_harness.chaos.invariants import Facts, InvariantResult, check_invariants
from isolation_harness.chaos.invariants.facts import (
    database_now_at,
    provider_book,
    redeliver_ipns,
    stored_operations,
)
from isolation_harness.chaos.stack import postgres
from isolation_harness.load.operations import (
    ACKNOWLEDGED,
    INDETERMINATE,
    OPERATION_KINDS,
    Operation,
    outcome_of,
)
from isolation_harness.reference_app.app_keys import WALLET
from isolation_harness.reference_app.services.deposits.domain import TRANSITIONS, DepositStatus
from isolation_harness.reference_app.services.wallet.service import WalletService
from tests.plugins.polling import until
from tests.plugins.reference_app import ADMIN_TOKEN, PaymentsFake, PricesFake, RunningApp, StartApp

MONEY = ["no_operation_lost", "provider_reconciled"]


def sql(dsn: str, statement: str, params: tuple[Any, ...] = ()) -> None:
    conn = postgres.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(statement, params)
    finally:
        conn.close()


@dataclass
class Client:
    """A client that records each money-moving request as the load users do."""

    app: RunningApp
    fake: PaymentsFake
    operations: list[Operation] = field(default_factory=list)

    async def money(
        self, kind: str, sent: dict[str, str], method: str, path: str, service: str, *,
        token: str, body: Any = None, keyed: bool = True,
    ) -> dict[str, Any]:  # fmt: skip
        """One recorded request; it must be acknowledged (this test's requests are valid)."""
        key = secrets.token_hex(8) if keyed else None
        values = {**sent, **({"key": key} if key else {})}
        status, answer = await self.app.call(method, path, token=token, json=body, key=key)
        error = answer.get("error", {}) if isinstance(answer, dict) else {}
        outcome = outcome_of(status, 200 <= status < 300, error.get("code"),
                             error.get("service"), service)  # fmt: skip
        returned = {k: str(answer[k]) for k in ("transaction_id", "trade_id", "id")
                    if isinstance(answer, dict) and answer.get(k) is not None}  # fmt: skip
        self.operations.append(
            Operation(uuid.uuid4().hex, kind, values, outcome, status=status, returned=returned)
        )
        assert outcome == ACKNOWLEDGED, (kind, status, answer)
        return dict(answer)

    async def sign_up(self, funds: dict[str, str]) -> tuple[str, str]:
        status, body = await self.app.call(
            "POST", "/api/users", json={"username": f"o_{secrets.token_hex(6)}"}
        )
        assert status == 201, body
        user, token = body["user_id"], body["token"]
        for currency, amount in funds.items():
            sent = {"user_id": user, "currency": currency, "amount": amount}
            await self.money("admin.credit", sent, "POST", "/api/admin/credit", "wallet",
                             token=ADMIN_TOKEN, body=sent)  # fmt: skip
        return user, token

    async def deposit(self, user: str, token: str, amount: str) -> dict[str, Any]:
        sent = {"currency": "BTC", "amount": amount}
        return await self.money(
            "deposit.create", {"user_id": user, **sent}, "POST",
            "/api/nowpayments/create-deposit", "deposits", token=token, body=sent,
        )  # fmt: skip

    async def pay(self, user: str, deposit: dict[str, Any], amount: str) -> dict[str, Any]:
        """The payer has the provider finish the payment; its IPNs reach the app."""
        report = await self.fake.progress(deposit["provider_payment_id"], "finished", through=True)
        delivered = report["ipn"]["delivered"]
        self.operations.append(
            Operation(
                uuid.uuid4().hex,
                "deposit.pay",
                {"deposit_id": deposit["id"], "user_id": user, "currency": "BTC", "amount": amount},
                ACKNOWLEDGED if delivered else INDETERMINATE,
                status=200,
            )
        )
        return dict(report)

    async def trade(self, buyer: str, buyer_token: str, offer: str) -> str:
        sent = {"offer_id": offer, "amount": "0.001"}
        answer = await self.money(
            "p2p.trade_open", {"buyer_id": buyer, **sent}, "POST", "/api/p2p/trades", "p2p",
            token=buyer_token, body=sent,
        )  # fmt: skip
        return str(answer["trade_id"])

    async def move(self, trade: str, action: str, by: str, token: str) -> None:
        await self.money(
            f"p2p.trade_{action}", {"trade_id": trade, "by": by}, "POST",
            f"/api/p2p/trades/{trade}/{action}", "p2p", token=token, keyed=False,
        )  # fmt: skip

    async def check(self, dsn: str, since: datetime) -> dict[str, InvariantResult]:
        """The money invariants, as the runner checks them (off the loop the fake runs on)."""
        book = await asyncio.to_thread(provider_book, self.fake.url)
        results = await asyncio.to_thread(
            check_invariants, dsn, MONEY,
            Facts(None, operations=self.operations, since=since, payments=book),
        )  # fmt: skip
        return {r.name: r for r in results}


@pytest.fixture
async def app(start_app: StartApp, prices_fake: PricesFake) -> RunningApp:
    return await start_app(prices_url=prices_fake.url)


@pytest.fixture
def client(app: RunningApp, payments_fake: PaymentsFake) -> Client:
    return Client(app, payments_fake)


async def every_kind(client: Client) -> dict[str, Any]:
    """One request of every money-moving kind the load makes, through the app."""
    app = client.app
    user, token = await client.sign_up({"USDT": "2000", "BTC": "0.01"})
    withdrawn = {"currency": "USDT", "amount": "1.50"}
    await client.money("wallet.withdraw", {"user_id": user, **withdrawn}, "POST",
                       "/api/wallet/withdraw", "wallet", token=token, body=withdrawn)  # fmt: skip
    paid = await client.deposit(user, token, "0.02")
    await client.pay(user, paid, "0.02")
    unpaid = await client.deposit(user, token, "0.03")

    status, quote = await app.call(
        "POST", "/api/swap/quotes", token=token, json={"sell": "USDT", "buy": "BTC", "amount": "50"}
    )
    assert status == 201, quote
    await client.money(
        "swap.execute", {"quote_id": quote["quote_id"], "user_id": user, "sell": "USDT",
                         "amount": "50", "buy": "BTC"},
        "POST", f"/api/swap/quotes/{quote['quote_id']}/execute", "swap", token=token,
    )  # fmt: skip
    liquidity = {"currency": "ETH", "amount": "2"}
    await client.money("admin.liquidity", liquidity, "POST", "/api/admin/liquidity", "express",
                       token=ADMIN_TOKEN, body=liquidity)  # fmt: skip
    status, quote = await app.call(
        "POST", "/api/express/quotes", token=token, json={"buy": "ETH", "pay": "USDT",
                                                          "amount": "0.01"},
    )  # fmt: skip
    assert status == 201, quote
    await client.money(
        "express.order", {"quote_id": quote["quote_id"], "user_id": user, "buy": "ETH",
                          "amount": "0.01", "pay": "USDT"},
        "POST", f"/api/express/quotes/{quote['quote_id']}/orders", "express", token=token,
    )  # fmt: skip

    _seller, seller_token = await client.sign_up({"BTC": "0.1"})
    buyer, buyer_token = await client.sign_up({})
    status, offer = await app.call(
        "POST", "/api/p2p/offers", token=seller_token,
        json={"currency": "BTC", "fiat": "USD", "price": "64000.00", "amount": "0.01",
              "max_amount": "0.002"},
    )  # fmt: skip
    assert status == 201, offer
    released = await client.trade(buyer, buyer_token, offer["offer_id"])
    await client.move(released, "paid", "buyer", buyer_token)
    await client.move(released, "release", "seller", seller_token)
    cancelled = await client.trade(buyer, buyer_token, offer["offer_id"])
    await client.move(cancelled, "cancel", "buyer", buyer_token)
    disputed = await client.trade(buyer, buyer_token, offer["offer_id"])
    await client.move(disputed, "paid", "buyer", buyer_token)
    await client.move(disputed, "dispute", "seller", seller_token)
    await client.money(
        "p2p.trade_resolve", {"trade_id": disputed, "by": "admin", "winner": "buyer"},
        "POST", f"/api/admin/p2p/trades/{disputed}/resolve", "p2p", token=ADMIN_TOKEN,
        body={"winner": "buyer"}, keyed=False,
    )  # fmt: skip
    return {"user": user, "token": token, "paid": paid, "unpaid": unpaid}


async def test_the_facts_are_what_the_app_stored_and_a_correct_run_passes(
    client: Client, app_database: str
) -> None:
    since = database_now_at(app_database)
    await every_kind(client)
    conn = postgres.connect(app_database)
    try:
        with conn.cursor() as cur:
            stored = stored_operations(cur, since)
    finally:
        conn.close()
    assert Counter(s.kind for s in stored) == Counter(o.kind for o in client.operations)
    assert {s.kind for s in stored} == set(OPERATION_KINDS)

    results = await client.check(app_database, since)
    lost = results["no_operation_lost"]
    assert lost.passed, lost.violations
    assert lost.checked == len(client.operations)
    assert lost.counts | {"checked": 0} == {
        "checked": 0, "stored": len(stored), "lost": 0, "unexpected": 0, "duplicated": 0,
        "failed": 0, "indeterminate": 0, "indeterminate_applied": 0,
        "indeterminate_not_applied": 0,
    }  # fmt: skip
    reconciled = results["provider_reconciled"]
    assert reconciled.passed, reconciled.violations
    assert (reconciled.counts["finished"], reconciled.counts["credited"]) == (1, 1)
    assert reconciled.counts["payments"] == 2
    assert reconciled.as_dict()["counts"] == reconciled.counts


async def test_an_acknowledged_deposit_altered_or_deleted_is_lost(
    client: Client, app_database: str
) -> None:
    since = database_now_at(app_database)
    user, token = await client.sign_up({})
    altered = await client.deposit(user, token, "0.04")
    deleted = await client.deposit(user, token, "0.05")
    assert (await client.check(app_database, since))["no_operation_lost"].passed
    sql(app_database, "UPDATE deposits.deposits SET amount = 0.4 WHERE id = %s", (altered["id"],))
    sql(app_database, "DELETE FROM deposits.deposits WHERE id = %s", (deleted["id"],))
    result = (await client.check(app_database, since))["no_operation_lost"]
    assert not result.passed
    assert result.counts["lost"] == 2
    assert any(altered["id"] in v and "amount 0.4" in v for v in result.violations)
    assert any("lost" in v and f"id={deleted['id']}" in v for v in result.violations)


async def test_a_build_that_applies_a_withdrawal_twice_fails(
    client: Client, app: RunningApp, app_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    since = database_now_at(app_database)
    user, token = await client.sign_up({"USDT": "10"})
    wallet: WalletService = app.app[WALLET]
    debit: Callable[..., Awaitable[Any]] = wallet.debit

    async def debit_twice(*args: Any, idempotency_key: str, **kwargs: Any) -> Any:
        # The bug: a "retry" under a key of its own, after the first debit succeeded.
        posted = await debit(*args, idempotency_key=idempotency_key, **kwargs)
        await debit(*args, idempotency_key=f"{idempotency_key}:retry", **kwargs)
        return posted

    monkeypatch.setattr(wallet, "debit", debit_twice)
    sent = {"currency": "USDT", "amount": "2"}
    answer = await client.money(
        "wallet.withdraw", {"user_id": user, **sent}, "POST", "/api/wallet/withdraw", "wallet",
        token=token, body=sent,
    )  # fmt: skip
    result = (await client.check(app_database, since))["no_operation_lost"]
    assert not result.passed
    assert result.counts["duplicated"] == 1
    [violation] = result.violations
    assert "duplicated" in violation
    assert f"transaction_id={answer['transaction_id']}" in violation


@pytest.mark.parametrize("refuses_late", [False, True], ids=["credits-late", "refuses-late"])
async def test_a_payment_finished_after_the_app_expired_its_deposit(
    start_app: StartApp,
    payments_fake: PaymentsFake,
    app_database: str,
    monkeypatch: pytest.MonkeyPatch,
    refuses_late: bool,
) -> None:
    """The app expires unpaid deposits on its own clock; the provider takes the payment
    later. The app credits it, and the provider's book agrees with the ledger. An app that
    refuses the late IPNs instead (answering 200; the old one, "expired" final) is caught:
    the book shows money the ledger never got."""
    if refuses_late:
        monkeypatch.setitem(TRANSITIONS, DepositStatus.EXPIRED, frozenset())
    app = await start_app(deposit_expiry_seconds=0.2, expire_deposits_every=0.1)
    client = Client(app, payments_fake)
    since = database_now_at(app_database)
    user, token = await client.sign_up({})
    deposit = await client.deposit(user, token, "0.01")

    async def expired() -> bool:
        status, body = await app.call(
            "GET", f"/api/nowpayments/deposits/{deposit['id']}", token=token
        )
        return status == 200 and body["status"] == "expired"

    await until(expired)
    report = await client.pay(user, deposit, "0.01")
    assert report["ipn"] == {"delivered": True, "status": 200, "error": None}

    results = await client.check(app_database, since)
    reconciled = results["provider_reconciled"]
    lost = results["no_operation_lost"]
    if not refuses_late:
        assert reconciled.passed, reconciled.violations
        assert reconciled.counts["credited"] == 1
        assert lost.passed, lost.violations
        return
    assert not reconciled.passed
    assert reconciled.counts["uncredited"] == 1
    [violation] = reconciled.violations
    payment = str(deposit["provider_payment_id"])
    assert f"payment {payment}" in violation
    assert "expired" in violation
    assert not lost.passed
    assert any(deposit["id"] in v and "deposit.pay" in v for v in lost.violations)


async def test_a_deposit_credit_without_a_finished_payment_fails(
    client: Client, app: RunningApp, app_database: str
) -> None:
    since = database_now_at(app_database)
    user, token = await client.sign_up({})
    deposit = await client.deposit(user, token, "0.01")
    # A broken build credits a deposit the provider never reported paid.
    posted = await app.app[WALLET].credit(
        uuid.UUID(user), "BTC", Decimal("0.01"), kind="deposit",
        idempotency_key=f"deposit:{deposit['id']}", reference=f"deposit:{deposit['id']}",
    )  # fmt: skip
    results = await client.check(app_database, since)
    reconciled = results["provider_reconciled"]
    assert reconciled.counts["credits_without_payment"] == 1
    assert f"transaction {posted.transaction_id}" in reconciled.violations[0]
    assert "waiting at the provider" in reconciled.violations[0]
    unexpected = results["no_operation_lost"]
    assert unexpected.counts["unexpected"] == 1
    assert f"deposit credit transaction {posted.transaction_id}" in unexpected.violations[0]


async def test_an_ipn_refused_during_a_fault_is_resent_and_then_reconciles(
    client: Client, app: RunningApp, app_database: str
) -> None:
    """The runner resends, as the real provider would, each finished payment's IPN that the
    app could not take; the payment is then credited once and the books agree."""
    since = database_now_at(app_database)
    user, token = await client.sign_up({})
    deposit = await client.deposit(user, token, "0.06")
    status, _ = await app.call("PUT", "/api/_faults/deposits", token=ADMIN_TOKEN,
                               json={"mode": "raise"})  # fmt: skip
    assert status == 200
    try:
        report = await client.pay(user, deposit, "0.06")
    finally:
        await app.call("DELETE", "/api/_faults", token=ADMIN_TOKEN)
    assert report["ipn"]["status"] == 503
    assert client.operations[-1].outcome == INDETERMINATE
    before = await client.check(app_database, since)
    assert before["provider_reconciled"].counts["uncredited"] == 1

    redelivery = await asyncio.to_thread(redeliver_ipns, client.fake.url)
    assert redelivery.resent == 1
    assert redelivery.reasons == ("the app answered HTTP 503 (deposits: service_broken)",)
    after = await client.check(app_database, since)
    for result in after.values():
        assert result.passed, (result.name, result.violations)
    assert after["provider_reconciled"].counts["credited"] == 1
    assert after["no_operation_lost"].counts["indeterminate_applied"] == 1
    assert (await asyncio.to_thread(redeliver_ipns, client.fake.url)).resent == 0  # none left
