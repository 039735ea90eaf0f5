"""Swap executions and express orders left half-done by a wallet that failed mid-way (broken
through the fault API, its answer lost behind a cut Toxiproxy link), on a real PostgreSQL:
none is carried on at its old price after its deadline, and each ends with exactly one
outcome, by what the wallet holds under its key."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from isolation_harness.chaos.toxiproxy.client import Proxy, ToxiproxyClient
from isolation_harness.reference_app.app_keys import DATABASES, EXPRESS, SWAP, WALLET
from isolation_harness.reference_app.errors import DependencyUnavailable, Gone
from isolation_harness.reference_app.faults import Fault, FaultMode
from isolation_harness.reference_app.services.background.domain import JobName
from isolation_harness.reference_app.services.background.views import BACKGROUND, JOBS
from isolation_harness.reference_app.services.express.domain import OrderState
from isolation_harness.reference_app.services.swap.domain import QuoteState
from isolation_harness.reference_app.services.wallet.service import WalletService
from tests.plugins.ledger import funded_user
from tests.plugins.polling import until
from tests.plugins.quotes import until_expired
from tests.plugins.reference_app import PricesFake, RunningApp, StartApp, service_fault

D = Decimal
#: quotes short-lived, and no job running by itself: each test runs what it means to
SETTINGS: dict[str, Any] = {"quote_ttl_seconds": 1.0, "express_quote_ttl_seconds": 1.0,
                            "expire_quotes_every": 3600.0}  # fmt: skip


async def started(start_app: StartApp, prices_fake: PricesFake) -> RunningApp:
    return await start_app(prices_url=prices_fake.url, **SETTINGS)


async def kinds(wallet: WalletService, reference: str) -> list[str]:
    """The kinds of the wallet's transactions with ``reference``."""
    async with wallet.db.cursor() as cur:
        await cur.execute(
            "SELECT kind FROM wallet.transactions WHERE reference = %s ORDER BY id", (reference,)
        )
        return [row[0] for row in await cur.fetchall()]


async def balances(wallet: WalletService, user: uuid.UUID, *currencies: str) -> list[Decimal]:
    return [(await wallet.balance(user, c)).available for c in currencies]


async def wallet_fails_at_once(api: RunningApp, call: Callable[[], Awaitable[Any]]) -> None:
    """``call`` with the wallet broken: it fails at its first connection, nothing posted."""
    async with service_fault(api, "wallet"):
        with pytest.raises(DependencyUnavailable) as failed:
            await call()
        assert failed.value.service == "wallet"


async def answer_lost(
    api: RunningApp, call: Callable[[], Awaitable[Any]], link: Proxy, toxiproxy: ToxiproxyClient
) -> None:
    """``call`` whose wallet movement commits while its service's own link is cut: the
    money moves, the service never records it, its caller gets a 503."""
    async with service_fault(api, "wallet", Fault(FaultMode.SLOW, 1000)):
        task = asyncio.ensure_future(call())
        try:
            wallet_pool = api.app[DATABASES].for_service("wallet").pool
            await until(lambda: wallet_pool.stats().in_use > 0 or None, timeout=10)
            await toxiproxy.disable(link.name)
            with pytest.raises(DependencyUnavailable):
                await task
        finally:
            await toxiproxy.enable(link.name)


async def test_a_swap_retried_after_its_deadline_moves_nothing(
    start_app: StartApp, prices_fake: PricesFake
) -> None:
    api = await started(start_app, prices_fake)
    swap, wallet = api.app[SWAP], api.app[WALLET]
    user = await funded_user(wallet, BTC="1")
    quote = await swap.request_quote(user, "BTC", "USDT", D("0.1"))
    await wallet_fails_at_once(api, lambda: swap.execute_quote(user, quote.id, "x1"))
    assert (await swap.quote(user, quote.id)).state is QuoteState.EXECUTING
    await until_expired(quote)
    for _ in range(2):  # the free option at the old price is gone, and stays gone
        with pytest.raises(Gone) as gone:
            await swap.execute_quote(user, quote.id, "x1")
        assert gone.value.code == "quote_expired"
    assert (await swap.quote(user, quote.id)).state is QuoteState.EXPIRED
    assert await balances(wallet, user, "BTC", "USDT") == [D("1"), 0]
    assert await kinds(wallet, quote.reference) == ["void"]  # the key spent


async def test_a_swap_whose_answer_was_lost_is_executed_once_by_the_job(
    start_app: StartApp, prices_fake: PricesFake, links: dict[str, Proxy],
    toxiproxy: ToxiproxyClient,
) -> None:  # fmt: skip
    api = await started(start_app, prices_fake)
    swap, wallet, background = api.app[SWAP], api.app[WALLET], api.app[BACKGROUND]
    assert JobName.SETTLE_EXECUTIONS in api.app[JOBS].jobs  # run by the app on its schedule
    user = await funded_user(wallet, BTC="1")
    quote = await swap.request_quote(user, "BTC", "USDT", D("0.1"))
    await answer_lost(api, lambda: swap.execute_quote(user, quote.id, "x1"), links["swap"],
                      toxiproxy)  # fmt: skip
    assert (await swap.quote(user, quote.id)).state is QuoteState.EXECUTING
    moved = await balances(wallet, user, "BTC", "USDT")
    assert moved == [D("0.9"), quote.buy_amount]  # the wallet did post it

    # (the worker's database holds other tests' quotes: only this one is looked at)
    assert quote.id not in await background.settle_interrupted_executions(quote.expires_at)
    due = quote.expires_at + timedelta(seconds=2 * background.settings.service_timeout)
    assert quote.id in await background.settle_interrupted_executions(due)
    settled = await swap.quote(user, quote.id)
    assert settled.state is QuoteState.EXECUTED
    assert settled.transaction_id is not None
    execution = await swap.execute_quote(user, quote.id, "x1")  # the retry answers it
    assert execution.replayed
    assert await balances(wallet, user, "BTC", "USDT") == moved  # once
    assert await kinds(wallet, quote.reference) == ["swap"]
    assert quote.id not in await background.settle_interrupted_executions(due)


async def test_an_express_order_retried_after_its_deadline_moves_nothing(
    start_app: StartApp, prices_fake: PricesFake
) -> None:
    api = await started(start_app, prices_fake)
    express, wallet = api.app[EXPRESS], api.app[WALLET]
    await express.fund_liquidity("BTC", D("10"), f"seed-{uuid.uuid4()}")
    user = await funded_user(wallet, USDT="100000")
    quote = await express.request_quote(user, "BTC", "USDT", D("0.01"))
    await wallet_fails_at_once(api, lambda: express.place_order(user, quote.id, "o1"))
    await until_expired(quote)
    for _ in range(2):
        with pytest.raises(Gone) as gone:
            await express.place_order(user, quote.id, "o1")
        assert gone.value.code == "quote_expired"
    assert await balances(wallet, user, "BTC", "USDT") == [0, D("100000")]
    async with express.db.cursor() as cur:
        await cur.execute(
            "SELECT id, state, reason FROM express.orders WHERE quote_id = %s", (str(quote.id),)
        )
        [(order_id, state, reason)] = await cur.fetchall()
    assert (state, reason) == (OrderState.REJECTED.value, "quote_expired")
    assert await kinds(wallet, f"express:order:{order_id}") == ["void"]


async def test_an_express_order_whose_answer_was_lost_is_filled_once_by_the_job(
    start_app: StartApp, prices_fake: PricesFake, links: dict[str, Proxy],
    toxiproxy: ToxiproxyClient,
) -> None:  # fmt: skip
    api = await started(start_app, prices_fake)
    express, wallet, background = api.app[EXPRESS], api.app[WALLET], api.app[BACKGROUND]
    await express.fund_liquidity("BTC", D("10"), f"seed-{uuid.uuid4()}")
    user = await funded_user(wallet, USDT="100000")
    quote = await express.request_quote(user, "BTC", "USDT", D("0.01"))
    await answer_lost(api, lambda: express.place_order(user, quote.id, "o1"),
                      links["express"], toxiproxy)  # fmt: skip
    moved = await balances(wallet, user, "BTC", "USDT")
    assert moved == [D("0.01"), D("100000") - quote.pay_amount]
    due = quote.expires_at + timedelta(seconds=2 * background.settings.service_timeout)
    await background.settle_interrupted_executions(due)
    async with express.db.cursor() as cur:
        await cur.execute("SELECT id FROM express.orders WHERE quote_id = %s", (str(quote.id),))
        [(order_id,)] = await cur.fetchall()
    order = await express.order(user, uuid.UUID(str(order_id)))
    assert order.state is OrderState.FILLED
    placement = await express.place_order(user, quote.id, "o1")
    assert (placement.order.id, placement.replayed) == (order.id, True)
    assert await balances(wallet, user, "BTC", "USDT") == moved  # once
    assert await kinds(wallet, order.reference) == ["express_buy"]
