"""Deposits through the sequences that lose money elsewhere, on a real PostgreSQL, with the
provider fake and faults through Toxiproxy and the fault API: a payment the provider
finished after the app expired its deposit, a credit whose deposit was never marked, and
IPNs held up by a hanging wallet."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from isolation_harness.chaos.toxiproxy.client import Proxy, ToxiproxyClient
from isolation_harness.reference_app.app_keys import DATABASES, DEPOSITS, WALLET
from isolation_harness.reference_app.errors import AppError, DependencyUnavailable
from isolation_harness.reference_app.payments_signature import sign
from isolation_harness.reference_app.services.deposits.domain import (
    Deposit,
    DepositStatus,
    Outcome,
)
from isolation_harness.reference_app.services.deposits.service import DepositsService
from tests.integration.test_deposits import ipn_of
from tests.plugins.polling import until
from tests.plugins.reference_app import ADMIN_TOKEN, IPN_SECRET, PaymentsFake, StartApp

#: no job runs by itself: each test runs the expiry when it means to
QUIET: dict[str, Any] = {"expire_deposits_every": 3600.0}


async def expire_all_waiting(deposits: DepositsService, deposit: Deposit) -> list[uuid.UUID]:
    """The expiry job, run as if ``deposit`` had waited an hour."""
    return await deposits.expire_unpaid(
        deposit.created_at + timedelta(hours=1), timedelta(0), limit=100_000
    )


async def callback(deposits: DepositsService, deposit: Deposit, status: str) -> Outcome:
    payload = ipn_of(deposit, status)
    outcome, _ = await deposits.apply_ipn(json.dumps(payload).encode(), sign(payload, IPN_SECRET))
    return outcome


async def test_a_payment_finished_after_the_app_expired_its_deposit_is_credited(
    start_app: StartApp, payments_fake: PaymentsFake
) -> None:
    """NOWPayments takes a payment days after the app gave up waiting: the late callbacks
    move the expired deposit on, and its ``finished`` is credited, once."""
    api = await start_app(**QUIET)
    deposits, wallet = api.app[DEPOSITS], api.app[WALLET]
    user = uuid.uuid4()
    deposit, _ = await deposits.create_deposit(user, "BTC", Decimal("0.25"), "late")
    assert deposit.id in await expire_all_waiting(deposits, deposit)
    assert (await deposits.deposit(user, deposit.id)).status is DepositStatus.EXPIRED
    assert deposit.provider_payment_id is not None
    report = await payments_fake.progress(deposit.provider_payment_id, "finished", through=True)
    assert [s["ipn"]["status"] for s in report["steps"]] == [200, 200, 200, 200]
    final = await deposits.deposit(user, deposit.id)
    assert final.status is DepositStatus.FINISHED
    assert final.credited_at is not None
    assert (await wallet.balance(user, "BTC")).available == Decimal("0.25")
    assert await callback(deposits, deposit, "finished") is Outcome.REPEATED
    assert (await wallet.balance(user, "BTC")).available == Decimal("0.25")
    async with deposits.db.cursor() as cur:
        await cur.execute(
            "SELECT status, outcome FROM deposits.ipn_events WHERE provider_payment_id = %s"
            " ORDER BY id",
            (deposit.provider_payment_id,),
        )
        events = await cur.fetchall()
    assert ("finished", "applied") in events
    assert all(outcome != "refused" for _, outcome in events), events


async def wallet_holds_a_connection(api: Any) -> bool | None:
    return api.app[DATABASES].for_service("wallet").pool.stats().in_use > 0 or None


async def test_a_credited_deposit_left_waiting_is_finished_never_expired(
    start_app: StartApp, links: dict[str, Proxy], toxiproxy: ToxiproxyClient
) -> None:
    """The wallet's credit committed, then the deposits database was cut before the deposit
    was marked: the IPN fails (the provider will call again), the deposit is still waiting,
    and the expiry job finishes it with that credit instead of expiring it."""
    api = await start_app(**QUIET)
    deposits, wallet = api.app[DEPOSITS], api.app[WALLET]
    user = uuid.uuid4()
    deposit, _ = await deposits.create_deposit(user, "ETH", Decimal("1.5"), "cut")
    status, _ = await api.call("PUT", "/api/_faults/wallet", token=ADMIN_TOKEN,
                               json={"mode": "slow", "slow_ms": 1500})  # fmt: skip
    assert status == 200
    ipn = asyncio.ensure_future(callback(deposits, deposit, "finished"))
    try:
        # the deposit is read and locked, the wallet has its connection (and sleeps on it)
        await until(lambda: wallet_holds_a_connection(api), timeout=10)
        await toxiproxy.disable(links["deposits"].name)
        with pytest.raises(DependencyUnavailable) as failed:
            await ipn
        assert failed.value.service == "deposits"
    finally:
        await toxiproxy.enable(links["deposits"].name)
        await api.call("DELETE", "/api/_faults", token=ADMIN_TOKEN)
    assert (await wallet.balance(user, "ETH")).available == Decimal("1.5")  # credited
    waiting = await until(lambda: readable(deposits, user, deposit.id), timeout=10)
    assert waiting.status is DepositStatus.WAITING  # ... and not marked

    assert deposit.id not in await expire_all_waiting(deposits, deposit)
    final = await deposits.deposit(user, deposit.id)
    assert final.status is DepositStatus.FINISHED
    assert final.credited_at is not None
    assert (await wallet.balance(user, "ETH")).available == Decimal("1.5")  # once
    assert await callback(deposits, deposit, "finished") is Outcome.REPEATED


async def readable(deposits: DepositsService, user: uuid.UUID, deposit_id: uuid.UUID) -> Any:
    """The deposit, once its database answers again."""
    try:
        return await deposits.deposit(user, deposit_id)
    except DependencyUnavailable:
        return None


#: IPNs at once, more than the deposits pool's 10 connections
IPNS = 14


@pytest.mark.parametrize("bounded", [True, False], ids=["bounded", "unbounded"])
async def test_ipns_waiting_on_a_hanging_wallet_leave_deposits_its_pool(
    start_app: StartApp, bounded: bool
) -> None:
    """The IPN credits the wallet while it holds its deposit's row (so that the credit and
    the move are one step to every reader): with the wallet hanging, a burst of IPNs holds
    at most half the deposits pool, each until the service's limit, and deposits keeps
    serving its users. Without the bound (the same app, the bound taken away) the burst
    takes the whole pool and the users' reads time out: what this test would see."""
    api = await start_app(service_timeout=3.0, **QUIET)
    deposits = api.app[DEPOSITS]
    if not bounded:
        deposits._ipn_holds = None
    user = uuid.uuid4()
    made = [(await deposits.create_deposit(user, "BTC", Decimal("0.01"), f"k{n}"))[0]
            for n in range(IPNS)]  # fmt: skip
    status, _ = await api.call("PUT", "/api/_faults/wallet", token=ADMIN_TOKEN,
                               json={"mode": "hang"})  # fmt: skip
    assert status == 200
    try:
        ipns = asyncio.gather(*(callback(deposits, d, "finished") for d in made),
                              return_exceptions=True)  # fmt: skip
        await asyncio.sleep(0.5)  # the burst has taken what it may
        reads = await asyncio.gather(
            *(deposits.deposit(user, d.id) for d in made[:5]), return_exceptions=True
        )
        answered = await ipns
    finally:
        await api.call("DELETE", "/api/_faults", token=ADMIN_TOKEN)
    failed_reads = [r for r in reads if isinstance(r, BaseException)]
    if bounded:
        assert failed_reads == []
        # every IPN ended within the service's limit as a 503
        assert all(isinstance(a, DependencyUnavailable) for a in answered), answered
    else:
        assert failed_reads, "the unbounded burst must starve the reads (the test's witness)"
        assert all(isinstance(r, AppError) and r.code == "pool_timeout" for r in failed_reads)
    # The provider calls again once the wallet is back: each credited once. (A use case
    # past its limit is cancelled, not waited for, and a cancellation that lands as a
    # driver call completes can be lost: such an IPN may finish its credit once the wallet
    # is mended, under its row lock, and its retry is then a repeat.)
    again = await asyncio.gather(*(callback(deposits, d, "finished") for d in made))
    assert set(again) <= {Outcome.APPLIED, Outcome.REPEATED}
    assert (await api.app[WALLET].balance(user, "BTC")).available == Decimal("0.01") * IPNS
    assert {(await deposits.deposit(user, d.id)).status for d in made} == {DepositStatus.FINISHED}
    # nothing of the burst still running when the app is stopped (a late acquire would
    # open a connection in a closed pool)
    pool = api.app[DATABASES].for_service("deposits").pool
    await until(lambda: (pool.stats().in_use, pool.stats().waiting) == (0, 0), timeout=20)
