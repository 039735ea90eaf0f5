"""Deposit use cases on a real PostgreSQL, with the provider fake behind its own link."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest

from isolation_harness.reference_app.app_keys import DEPOSITS, WALLET
from isolation_harness.reference_app.errors import (
    Conflict,
    DependencyUnavailable,
    NotFound,
    UpstreamRefused,
)
from isolation_harness.reference_app.payments_signature import sign
from isolation_harness.reference_app.services.deposits.domain import (
    Deposit,
    DepositStatus,
    Outcome,
)
from isolation_harness.reference_app.services.deposits.provider import PROVIDER_TICKERS
from isolation_harness.reference_app.services.deposits.service import DepositsService
from tests.plugins.reference_app import IPN_SECRET, PaymentsFake, RunningApp


@pytest.fixture
def deposits(api: RunningApp) -> DepositsService:
    return api.app[DEPOSITS]


async def count_rows(deposits: DepositsService, user: uuid.UUID) -> int:
    async with deposits.db.cursor() as cur:
        await cur.execute("SELECT count(*) FROM deposits.deposits WHERE user_id = %s", (str(user),))
        row = await cur.fetchone()
        return int(row[0])


async def test_create_deposit_records_the_provider_payment(
    deposits: DepositsService, payments_fake: PaymentsFake
) -> None:
    user = uuid.uuid4()
    deposit, replayed = await deposits.create_deposit(user, "BTC", Decimal("0.25"), "k1")
    assert not replayed
    assert deposit.status is DepositStatus.WAITING
    assert deposit.provider_payment_id is not None
    assert deposit.pay_address
    assert deposit.pay_amount == Decimal("0.25")
    listed = await payments_fake.control("GET", "/payments")
    ids = {str(p["payment_id"]) for p in listed["payments"]}
    assert deposit.provider_payment_id in ids


async def test_same_idempotency_key_returns_the_same_deposit(
    deposits: DepositsService, payments_fake: PaymentsFake
) -> None:
    user = uuid.uuid4()
    first, _ = await deposits.create_deposit(user, "ETH", Decimal("1"), "same")
    again, replayed = await deposits.create_deposit(user, "ETH", Decimal("1"), "same")
    assert replayed
    assert again == first
    concurrent = await asyncio.gather(
        *(deposits.create_deposit(user, "ETH", Decimal("2"), "race") for _ in range(10))
    )
    assert len({d.id for d, _ in concurrent}) == 1
    assert sum(not replayed for _, replayed in concurrent) == 1
    assert await count_rows(deposits, user) == 2
    with pytest.raises(Conflict, match="different deposit"):
        await deposits.create_deposit(user, "ETH", Decimal("3"), "same")


@pytest.mark.parametrize(
    "mode", [{"mode": "error", "status": 503}, {"mode": "malformed"}], ids=["5xx", "malformed"]
)
async def test_provider_failure_rolls_back(
    deposits: DepositsService, payments_fake: PaymentsFake, mode: dict[str, object]
) -> None:
    user = uuid.uuid4()
    await payments_fake.control("POST", "/mode", mode)
    with pytest.raises(DependencyUnavailable, match="payment provider unavailable") as caught:
        await deposits.create_deposit(user, "BTC", Decimal("1"), "k")
    assert caught.value.service == "deposits"
    assert await count_rows(deposits, user) == 0
    await payments_fake.control("POST", "/mode", {"mode": "normal"})
    _deposit, replayed = await deposits.create_deposit(user, "BTC", Decimal("1"), "k")
    assert not replayed, "the failed attempt must not have kept the key"
    assert await count_rows(deposits, user) == 1


async def test_provider_link_down_rolls_back(
    api: RunningApp, deposits: DepositsService, payments_fake: PaymentsFake, toxiproxy: object
) -> None:
    from isolation_harness.chaos.toxiproxy.client import ToxiproxyClient

    assert isinstance(toxiproxy, ToxiproxyClient)
    user = uuid.uuid4()
    await toxiproxy.disable(payments_fake.link.name)
    with pytest.raises(DependencyUnavailable, match="provider"):
        await deposits.create_deposit(user, "BTC", Decimal("1"), "k")
    assert await count_rows(deposits, user) == 0


async def test_finished_ipn_credits_the_wallet_exactly_once(
    api: RunningApp, deposits: DepositsService, payments_fake: PaymentsFake
) -> None:
    user = uuid.uuid4()
    deposit, _ = await deposits.create_deposit(user, "BTC", Decimal("0.5"), "k")
    assert deposit.provider_payment_id is not None
    report = await payments_fake.progress(deposit.provider_payment_id, "finished", through=True)
    assert [s["ipn"]["status"] for s in report["steps"]] == [200, 200, 200, 200]
    wallet = api.app[WALLET]
    assert (await wallet.balance(user, "BTC")).available == Decimal("0.5")
    for _ in range(3):  # the provider repeats itself
        again = await payments_fake.control(
            "POST", f"/payments/{deposit.provider_payment_id}/resend-ipn"
        )
        assert again["ipn"]["status"] == 200
    assert (await wallet.balance(user, "BTC")).available == Decimal("0.5")
    final = await deposits.deposit(user, deposit.id)
    assert final.status is DepositStatus.FINISHED
    assert final.credited_at is not None


def ipn_of(deposit: Deposit, status: str) -> dict[str, Any]:
    """The provider's callback for ``deposit``, as NOWPayments writes one."""
    ticker = PROVIDER_TICKERS[deposit.currency]
    return {"payment_id": int(deposit.provider_payment_id or 0), "payment_status": status,
            "order_id": str(deposit.id), "price_amount": str(deposit.amount),
            "price_currency": ticker, "pay_currency": ticker}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "said"),
    [({"order_id": "another-order"}, "order_id"), ({"price_currency": "btc"}, "price_currency"),
     ({"price_amount": "2.5"}, "price_amount"), ({"price_amount": None}, "price_amount")],
    ids=["order", "currency", "amount", "no-amount"],
)  # fmt: skip
async def test_a_callback_not_matching_its_deposit_is_recorded_and_refused(
    api: RunningApp, deposits: DepositsService, change: dict[str, Any], said: str
) -> None:
    user = uuid.uuid4()
    deposit, _ = await deposits.create_deposit(user, "ETH", Decimal("2"), "k")
    payload = {**ipn_of(deposit, "finished"), **change}
    with pytest.raises(Conflict, match=said) as refused:
        await deposits.apply_ipn(json.dumps(payload).encode(), sign(payload, IPN_SECRET))
    assert refused.value.code == "ipn_mismatch"
    assert (await api.app[WALLET].balance(user, "ETH")).available == 0  # nothing credited
    async with deposits.db.cursor() as cur:
        await cur.execute(
            "SELECT outcome, status FROM deposits.ipn_events WHERE provider_payment_id = %s",
            (deposit.provider_payment_id,),
        )
        assert await cur.fetchall() == [("mismatched", "finished")]
    # the matching callback still applies
    outcome, _ = await deposits.apply_ipn(
        json.dumps(ipn_of(deposit, "finished")).encode(),
        sign(ipn_of(deposit, "finished"), IPN_SECRET),
    )
    assert outcome is Outcome.APPLIED
    assert (await api.app[WALLET].balance(user, "ETH")).available == Decimal("2")


async def test_concurrent_finished_callbacks_credit_once(
    api: RunningApp, deposits: DepositsService
) -> None:
    user = uuid.uuid4()
    deposit, _ = await deposits.create_deposit(user, "ETH", Decimal("2"), "k")
    body = json.dumps(ipn_of(deposit, "finished")).encode()
    signature = sign(json.loads(body), IPN_SECRET)
    outcomes = await asyncio.gather(*(deposits.apply_ipn(body, signature) for _ in range(10)))
    assert sorted(o.value for o, _ in outcomes) == ["applied"] + ["repeated"] * 9
    assert (await api.app[WALLET].balance(user, "ETH")).available == Decimal("2")


async def test_no_way_back_from_finished(deposits: DepositsService) -> None:
    user = uuid.uuid4()
    deposit, _ = await deposits.create_deposit(user, "BTC", Decimal("1"), "k")
    payment_id = int(deposit.provider_payment_id or 0)

    async def callback(status: str) -> Outcome:
        payload = {**ipn_of(deposit, status), "payment_id": payment_id}
        outcome, _ = await deposits.apply_ipn(
            json.dumps(payload).encode(), sign(payload, IPN_SECRET)
        )
        return outcome

    assert await callback("confirming") is Outcome.APPLIED
    assert await callback("finished") is Outcome.APPLIED
    for status in ("waiting", "confirming", "failed", "expired", "refunded"):
        assert await callback(status) is Outcome.REFUSED
    assert (await deposits.deposit(user, deposit.id)).status is DepositStatus.FINISHED


async def test_a_user_cannot_see_another_users_deposit(deposits: DepositsService) -> None:
    owner, stranger = uuid.uuid4(), uuid.uuid4()
    deposit, _ = await deposits.create_deposit(owner, "BTC", Decimal("1"), "k")
    assert (await deposits.deposit(owner, deposit.id)).id == deposit.id
    with pytest.raises(NotFound):
        await deposits.deposit(stranger, deposit.id)
    assert await deposits.deposits(stranger) == []


async def test_usdt_deposits_use_the_providers_ticker(
    deposits: DepositsService, payments_fake: PaymentsFake
) -> None:
    deposit, _ = await deposits.create_deposit(uuid.uuid4(), "USDT", Decimal("25.5"), "k")
    assert deposit.pay_currency == "USDTTRC20"
    assert deposit.pay_amount == Decimal("25.5")
    listed = await payments_fake.control("GET", "/payments")
    assert listed["payments"][0]["pay_currency"] == "usdttrc20"


async def test_a_provider_refusal_is_a_502_not_an_outage(
    deposits: DepositsService, payments_fake: PaymentsFake
) -> None:
    user = uuid.uuid4()
    await payments_fake.control("POST", "/mode", {"mode": "error", "status": 400})
    with pytest.raises(UpstreamRefused, match="provider refused") as caught:
        await deposits.create_deposit(user, "BTC", Decimal("1"), "k")
    assert (caught.value.status, caught.value.service) == (502, "deposits")
    assert await count_rows(deposits, user) == 0
