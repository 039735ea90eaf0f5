"""P2P against the ways users abuse it, on a real PostgreSQL with the real wallet: a seller
who never releases a paid trade, a buyer opening trades without end, a buyer probing a
seller's balance amount by amount; and a transition cut short, finished by the app's own
schedule."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from isolation_harness.reference_app.app_keys import P2P, WALLET
from isolation_harness.reference_app.clock import utc_now
from isolation_harness.reference_app.errors import Conflict, DependencyUnavailable
from isolation_harness.reference_app.services.background.views import BACKGROUND
from isolation_harness.reference_app.services.p2p.domain import TradeState
from tests.integration.test_p2p import balance, new_user, offer_of, open_trade
from tests.plugins.polling import until
from tests.plugins.reference_app import StartApp, service_fault

D = Decimal
#: no job runs by itself unless a test asks for it
QUIET: dict[str, Any] = {"expire_trades_every": 3600.0}


async def test_a_paid_trade_its_seller_never_releases_goes_to_dispute(
    start_app: StartApp,
) -> None:
    api = await start_app(trade_release_seconds=60.0, **QUIET)
    p2p, wallet, background = api.app[P2P], api.app[WALLET], api.app[BACKGROUND]
    seller, buyer = await new_user(wallet, {"BTC": "1"}), await new_user(wallet)
    offer = await offer_of(p2p, seller)
    kept, released, unpaid = [await open_trade(p2p, buyer, offer, "0.1") for _ in range(3)]
    for trade in (kept, released):
        await p2p.mark_paid(trade.id, buyer)
    await p2p.release(released.id, seller)

    mine = {kept.id, released.id, unpaid.id}  # (the worker's database has other tests')
    assert not set(await background.dispute_unreleased_trades(utc_now())) & mine  # not due
    later = utc_now() + timedelta(seconds=61)
    assert set(await background.dispute_unreleased_trades(later)) & mine == {kept.id}
    assert (await p2p.trade(kept.id, buyer)).state is TradeState.DISPUTED
    assert (await p2p.trade(released.id, buyer)).state is TradeState.RELEASED
    assert (await p2p.trade(unpaid.id, buyer)).state is TradeState.OPEN
    # the escrow stays for the admin to decide
    assert await balance(wallet, seller) == (D("0.7"), D("0.2"))
    assert not set(await background.dispute_unreleased_trades(later)) & mine  # once


async def test_a_buyer_has_at_most_the_limit_of_trades_under_way(start_app: StartApp) -> None:
    api = await start_app(max_open_trades=2, **QUIET)
    p2p, wallet = api.app[P2P], api.app[WALLET]
    seller, buyer = await new_user(wallet, {"BTC": "1"}), await new_user(wallet)
    offer = await offer_of(p2p, seller)
    # at once: the limit holds under concurrency
    tried = await asyncio.gather(
        *(p2p.open_trade(buyer, offer.id, D("0.1"), uuid.uuid4().hex) for _ in range(6)),
        return_exceptions=True,
    )
    opened = [t for t, _ in (r for r in tried if not isinstance(r, BaseException))]
    refused = [r for r in tried if isinstance(r, BaseException)]
    assert len(opened) == 2, tried
    assert all(isinstance(r, Conflict) and r.code == "too_many_open_trades" for r in refused)
    assert "at most 2" in refused[0].args[0]
    # a replay of an opened trade is still answered
    other = await new_user(wallet)
    assert (await open_trade(p2p, other, offer, "0.1")).state is TradeState.OPEN
    await p2p.cancel_trade(opened[0].id, buyer)  # one ends: room for one more
    assert (await open_trade(p2p, buyer, offer, "0.1")).state is TradeState.OPEN
    with pytest.raises(Conflict, match="at most 2"):
        await open_trade(p2p, buyer, offer, "0.1")


async def test_a_balance_cannot_be_found_by_trying_amount_after_amount(
    start_app: StartApp,
) -> None:
    """The first opening the seller cannot cover withdraws the offer: every later one is
    refused alike, whatever its amount, and tells nothing more about the balance."""
    api = await start_app(**QUIET)
    p2p, wallet = api.app[P2P], api.app[WALLET]
    seller, prober = await new_user(wallet, {"BTC": "0.3"}), await new_user(wallet)
    offer = await offer_of(p2p, seller)  # offers more than the seller has
    with pytest.raises(Conflict) as first:
        await open_trade(p2p, prober, offer, "0.5")
    assert first.value.code == "seller_cannot_cover"
    answers = set()
    for amount in ("0.4", "0.25", "0.1", "0.01"):  # covered from 0.3 down: no difference
        with pytest.raises(Conflict) as later:
            await open_trade(p2p, prober, offer, amount)
        answers.add((later.value.code, later.value.message))
    assert len(answers) == 1
    assert next(iter(answers))[0] == "offer_closed"
    assert await balance(wallet, seller) == (D("0.3"), 0)  # nothing locked by the probes


async def test_a_transition_cut_short_is_finished_by_the_schedule(start_app: StartApp) -> None:
    """The buyer's cancel recorded, the wallet's unlock failed (broken through the fault
    API): the job that resumes interrupted transitions, run by the app on its own, gives
    the seller the escrow back."""
    api = await start_app(service_timeout=0.5, expire_trades_every=0.2)
    p2p, wallet = api.app[P2P], api.app[WALLET]
    seller, buyer = await new_user(wallet, {"BTC": "1"}), await new_user(wallet)
    trade = await open_trade(p2p, buyer, await offer_of(p2p, seller), "0.4")
    async with service_fault(api, "wallet"):
        with pytest.raises(DependencyUnavailable):
            await p2p.cancel_trade(trade.id, buyer)
    stuck = await p2p.trade(trade.id, buyer)
    assert (stuck.state, stuck.moving_to) == (TradeState.OPEN, TradeState.CANCELLED)

    async def finished() -> bool:
        return (await p2p.trade(trade.id, buyer)).state is TradeState.CANCELLED

    await until(finished, timeout=20)
    assert await balance(wallet, seller) == (D("1"), 0)
