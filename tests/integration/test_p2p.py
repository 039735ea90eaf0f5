"""P2P use cases on a real PostgreSQL, with the real wallet (through the app's pools)."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from decimal import Decimal

import pytest

from isolation_harness.reference_app.app_keys import P2P, WALLET
from isolation_harness.reference_app.errors import (
    BadRequest,
    Conflict,
    DependencyUnavailable,
    Forbidden,
    NotFound,
)
from isolation_harness.reference_app.services.p2p.domain import Actor, Offer, Trade, TradeState
from isolation_harness.reference_app.services.p2p.service import P2PService
from isolation_harness.reference_app.services.wallet.domain import (
    PLATFORM_REVENUE,
    TREASURY,
    LockState,
)
from isolation_harness.reference_app.services.wallet.service import WalletService
from tests.plugins.reference_app import RunningApp, service_fault

D = Decimal


@pytest.fixture
def p2p(api: RunningApp) -> P2PService:
    return api.app[P2P]


@pytest.fixture
def wallet(api: RunningApp) -> WalletService:
    return api.app[WALLET]


async def new_user(wallet: WalletService, funds: dict[str, str] | None = None) -> uuid.UUID:
    user = await wallet.create_user(f"u_{uuid.uuid4().hex[:10]}")
    for currency, amount in (funds or {}).items():
        await wallet.credit(
            user, currency, D(amount), source=TREASURY, idempotency_key=f"seed:{user}:{currency}"
        )
    return user


async def balance(wallet: WalletService, user: uuid.UUID, currency: str = "BTC") -> tuple[D, D]:
    found = await wallet.balance(user, currency)
    return found.available, found.escrow


async def revenue(wallet: WalletService, currency: str = "BTC") -> Decimal:
    async with wallet.db.cursor() as cur:
        await cur.execute(
            "SELECT coalesce(sum(balance), 0) FROM wallet.accounts"
            " WHERE owner = %(owner)s AND currency = %(currency)s",
            {"owner": PLATFORM_REVENUE, "currency": currency},
        )
        row = await cur.fetchone()
    return D(row[0])


async def movements(wallet: WalletService, trade: Trade) -> list[str]:
    """The kinds of the wallet's transactions for the trade's escrow, in order."""
    async with wallet.db.cursor() as cur:
        await cur.execute(
            "SELECT kind FROM wallet.transactions WHERE reference = %(ref)s ORDER BY id",
            {"ref": trade.escrow_reference},
        )
        return [row[0] for row in await cur.fetchall()]


async def offer_of(
    p2p: P2PService, seller: uuid.UUID, amount: str = "1", min_amount: str = "0.01",
    max_amount: str = "1",
) -> Offer:  # fmt: skip
    return await p2p.post_offer(
        seller, currency="BTC", fiat="USD", price=D("30000"), amount=D(amount),
        min_amount=D(min_amount), max_amount=D(max_amount),
    )  # fmt: skip


async def open_trade(p2p: P2PService, buyer: uuid.UUID, offer: Offer, amount: str) -> Trade:
    trade, replayed = await p2p.open_trade(buyer, offer.id, D(amount), uuid.uuid4().hex)
    assert not replayed
    return trade


@pytest.fixture
async def parties(wallet: WalletService) -> tuple[uuid.UUID, uuid.UUID]:
    """A seller with 1 BTC and a buyer with nothing."""
    return await new_user(wallet, {"BTC": "1"}), await new_user(wallet)


def later(seconds: float) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)


# -- the lifecycle ----------------------------------------------------------------------------


async def test_open_paid_released_moves_the_escrow_to_the_buyer_less_the_fee(
    p2p: P2PService, wallet: WalletService, parties: tuple[uuid.UUID, uuid.UUID]
) -> None:
    seller, buyer = parties
    revenue_before = await revenue(wallet)
    offer = await offer_of(p2p, seller, max_amount="0.5")

    trade = await open_trade(p2p, buyer, offer, "0.2")
    assert (trade.state, trade.moving_to) == (TradeState.OPEN, None)
    assert trade.fiat_total == D("6000.00")
    assert trade.expires_at - trade.created_at == datetime.timedelta(
        seconds=p2p.settings.trade_ttl_seconds
    )
    assert await balance(wallet, seller) == (D("0.8"), D("0.2"))
    assert (await wallet.escrow_lock(trade.escrow_reference)).state is LockState.HELD
    assert (await p2p.offer(offer.id)).remaining == D("0.8")

    paid = await p2p.mark_paid(trade.id, buyer)
    assert paid.state is TradeState.PAID
    assert await balance(wallet, seller) == (D("0.8"), D("0.2"))  # paid moves no money

    released = await p2p.release(trade.id, seller)
    fee = D("0.2") * p2p.settings.p2p_fee_rate
    assert (released.state, released.fee) == (TradeState.RELEASED, fee)
    assert await balance(wallet, buyer) == (D("0.2") - fee, 0)
    assert await balance(wallet, seller) == (D("0.8"), 0)
    assert await revenue(wallet) - revenue_before == fee
    lock = await wallet.escrow_lock(trade.escrow_reference)
    assert (lock.state, lock.released_to, lock.fee) == (LockState.RELEASED, buyer, fee)
    assert await movements(wallet, trade) == ["escrow_lock", "escrow_release"]
    assert (await p2p.offer(offer.id)).remaining == D("0.8")  # sold for good
    history = await p2p.history(trade.id, buyer)
    assert [(e["state"], e["actor"]) for e in history] == [
        ("pending", "buyer"), ("open", "system"), ("paid", "buyer"), ("released", "seller"),
    ]  # fmt: skip


async def test_the_fee_is_rounded_down_to_the_currency(
    p2p: P2PService, wallet: WalletService, parties: tuple[uuid.UUID, uuid.UUID]
) -> None:
    seller, buyer = parties
    offer = await offer_of(p2p, seller, min_amount="0.00000001")
    trade = await open_trade(p2p, buyer, offer, "0.00000099")
    await p2p.mark_paid(trade.id, buyer)
    released = await p2p.release(trade.id, seller)
    assert released.fee == 0  # 1 % of 99 satoshis is below one satoshi
    assert await balance(wallet, buyer) == (D("0.00000099"), 0)


async def test_buyer_cancel_unlocks_the_escrow_and_restores_the_offer(
    p2p: P2PService, wallet: WalletService, parties: tuple[uuid.UUID, uuid.UUID]
) -> None:
    seller, buyer = parties
    offer = await offer_of(p2p, seller)
    trade = await open_trade(p2p, buyer, offer, "0.3")
    assert await balance(wallet, seller) == (D("0.7"), D("0.3"))

    cancelled = await p2p.cancel_trade(trade.id, buyer)
    assert cancelled.state is TradeState.CANCELLED
    assert await balance(wallet, seller) == (D("1"), 0)
    assert await balance(wallet, buyer) == (0, 0)
    assert (await p2p.offer(offer.id)).remaining == D("1")
    assert await movements(wallet, trade) == ["escrow_lock", "escrow_unlock"]
    with pytest.raises(Conflict) as caught:
        await p2p.cancel_trade(trade.id, buyer)
    assert caught.value.code == "invalid_transition"


@pytest.mark.parametrize(("disputer", "winner"), [
    (Actor.BUYER, Actor.BUYER), (Actor.SELLER, Actor.BUYER),
    (Actor.BUYER, Actor.SELLER), (Actor.SELLER, Actor.SELLER),
])  # fmt: skip
async def test_a_dispute_is_resolved_by_the_admin_either_way(
    p2p: P2PService,
    wallet: WalletService,
    parties: tuple[uuid.UUID, uuid.UUID],
    disputer: Actor,
    winner: Actor,
) -> None:
    seller, buyer = parties
    revenue_before = await revenue(wallet)
    offer = await offer_of(p2p, seller)
    trade = await open_trade(p2p, buyer, offer, "0.5")
    await p2p.mark_paid(trade.id, buyer)
    disputed = await p2p.dispute(trade.id, buyer if disputer is Actor.BUYER else seller)
    assert disputed.state is TradeState.DISPUTED
    with pytest.raises(Conflict):
        await p2p.release(trade.id, seller)  # a disputed trade waits for the admin

    resolved = await p2p.resolve_dispute(trade.id, winner)
    if winner is Actor.BUYER:
        fee = D("0.005")
        assert (resolved.state, resolved.fee) == (TradeState.RESOLVED_BUYER, fee)
        assert await balance(wallet, buyer) == (D("0.5") - fee, 0)
        assert await balance(wallet, seller) == (D("0.5"), 0)
        assert await revenue(wallet) - revenue_before == fee
        assert (await p2p.offer(offer.id)).remaining == D("0.5")
    else:
        assert (resolved.state, resolved.fee) == (TradeState.RESOLVED_SELLER, None)
        assert await balance(wallet, buyer) == (0, 0)
        assert await balance(wallet, seller) == (D("1"), 0)
        assert await revenue(wallet) == revenue_before
        assert (await p2p.offer(offer.id)).remaining == D("1")
    with pytest.raises(Conflict):
        await p2p.resolve_dispute(trade.id, winner)  # decided once


async def test_expiry_unlocks_once(
    p2p: P2PService, wallet: WalletService, parties: tuple[uuid.UUID, uuid.UUID]
) -> None:
    seller, buyer = parties
    offer = await offer_of(p2p, seller)
    trade = await open_trade(p2p, buyer, offer, "0.4")
    paid = await open_trade(p2p, buyer, offer, "0.1")
    await p2p.mark_paid(paid.id, buyer)

    assert trade.id not in await p2p.expire_due_trades(later(0), limit=10_000)
    assert await balance(wallet, seller) == (D("0.5"), D("0.5"))

    ttl = p2p.settings.trade_ttl_seconds
    first = await p2p.expire_due_trades(later(ttl + 5), limit=10_000)
    second = await p2p.expire_due_trades(later(ttl + 5), limit=10_000)
    assert trade.id in first
    assert paid.id not in first  # a paid trade waits for the seller, whatever the time
    assert trade.id not in second
    assert (await p2p.trade(trade.id, buyer)).state is TradeState.EXPIRED
    assert (await p2p.trade(paid.id, buyer)).state is TradeState.PAID
    assert await balance(wallet, seller) == (D("0.9"), D("0.1"))
    assert await movements(wallet, trade) == ["escrow_lock", "escrow_unlock"]
    assert (await p2p.offer(offer.id)).remaining == D("0.9")
    with pytest.raises(Conflict):
        await p2p.mark_paid(trade.id, buyer)


async def test_concurrent_expiry_unlocks_once(
    p2p: P2PService, wallet: WalletService, parties: tuple[uuid.UUID, uuid.UUID]
) -> None:
    seller, buyer = parties
    trade = await open_trade(p2p, buyer, await offer_of(p2p, seller), "0.4")
    now = later(p2p.settings.trade_ttl_seconds + 5)
    runs = await asyncio.gather(*(p2p.expire_due_trades(now, limit=10_000) for _ in range(4)))
    assert sum(trade.id in run for run in runs) == 1
    assert await movements(wallet, trade) == ["escrow_lock", "escrow_unlock"]
    assert await balance(wallet, seller) == (D("1"), 0)


# -- who may do what --------------------------------------------------------------------------


async def test_invalid_transitions_are_conflicts(
    p2p: P2PService, parties: tuple[uuid.UUID, uuid.UUID]
) -> None:
    seller, buyer = parties
    offer = await offer_of(p2p, seller)
    trade = await open_trade(p2p, buyer, offer, "0.1")
    refused = [
        lambda: p2p.release(trade.id, seller),  # open: not paid yet
        lambda: p2p.dispute(trade.id, buyer),  # open: nothing to contest
        lambda: p2p.resolve_dispute(trade.id, Actor.BUYER),  # not disputed
    ]
    for call in refused:
        with pytest.raises(Conflict) as caught:
            await call()
        assert caught.value.code == "invalid_transition"
    await p2p.mark_paid(trade.id, buyer)
    for call in (lambda: p2p.mark_paid(trade.id, buyer), lambda: p2p.cancel_trade(trade.id, buyer)):
        with pytest.raises(Conflict) as caught:
            await call()
        assert caught.value.code == "invalid_transition"
    assert (await p2p.trade(trade.id, seller)).state is TradeState.PAID


async def test_each_party_may_only_do_its_part(
    p2p: P2PService, parties: tuple[uuid.UUID, uuid.UUID]
) -> None:
    seller, buyer = parties
    trade = await open_trade(p2p, buyer, await offer_of(p2p, seller), "0.1")
    with pytest.raises(Forbidden):
        await p2p.mark_paid(trade.id, seller)
    with pytest.raises(Forbidden):
        await p2p.cancel_trade(trade.id, seller)  # the seller waits for expiry
    await p2p.mark_paid(trade.id, buyer)
    with pytest.raises(Forbidden):
        await p2p.release(trade.id, buyer)
    assert (await p2p.trade(trade.id, seller)).state is TradeState.PAID


async def test_strangers_do_not_see_a_trade(
    p2p: P2PService, wallet: WalletService, parties: tuple[uuid.UUID, uuid.UUID]
) -> None:
    seller, buyer = parties
    stranger = await new_user(wallet)
    trade = await open_trade(p2p, buyer, await offer_of(p2p, seller), "0.1")
    for call in (
        lambda: p2p.trade(trade.id, stranger),
        lambda: p2p.history(trade.id, stranger),
        lambda: p2p.mark_paid(trade.id, stranger),
        lambda: p2p.cancel_trade(trade.id, stranger),
        lambda: p2p.trade(uuid.uuid4(), buyer),
    ):
        with pytest.raises(NotFound) as caught:
            await call()
        assert caught.value.code == "trade_not_found"
    assert (await p2p.trade(trade.id, buyer)).state is TradeState.OPEN
    assert [t.id for t in await p2p.trades(seller)] == [trade.id]
    assert await p2p.trades(stranger) == []


# -- offers -----------------------------------------------------------------------------------


async def test_offers_are_never_oversold(
    p2p: P2PService, wallet: WalletService, parties: tuple[uuid.UUID, uuid.UUID]
) -> None:
    seller, _ = parties
    offer = await offer_of(p2p, seller, amount="0.5", min_amount="0.1", max_amount="0.1")
    buyers = [await new_user(wallet) for _ in range(20)]

    async def attempt(buyer: uuid.UUID) -> Trade | str:
        try:
            return await open_trade(p2p, buyer, offer, "0.1")
        except Conflict as exc:
            return exc.code

    results = await asyncio.gather(*(attempt(b) for b in buyers))
    opened = [r for r in results if isinstance(r, Trade)]
    assert len(opened) == 5
    assert sorted(r for r in results if isinstance(r, str)) == ["offer_exhausted"] * 15
    assert all(t.state is TradeState.OPEN for t in opened)
    assert (await p2p.offer(offer.id)).remaining == 0
    assert await balance(wallet, seller) == (D("0.5"), D("0.5"))
    assert offer.id not in [o.id for o in await p2p.offers(currency="BTC", limit=500)]


async def test_a_seller_short_of_funds_fails_the_trade_and_withdraws_the_offer(
    p2p: P2PService, wallet: WalletService
) -> None:
    seller, buyer = await new_user(wallet, {"BTC": "0.1"}), await new_user(wallet)
    offer = await offer_of(p2p, seller)  # offers more than the seller has
    key = uuid.uuid4().hex
    for _ in range(2):  # the replay answers the same
        with pytest.raises(Conflict) as caught:
            await p2p.open_trade(buyer, offer.id, D("0.5"), key)
        assert caught.value.code == "seller_cannot_cover"
        assert "0.1" not in caught.value.message  # the seller's balance is not the buyer's
    (failed,) = await p2p.trades(buyer)
    assert failed.state is TradeState.FAILED
    assert await movements(wallet, failed) == []
    assert await balance(wallet, seller) == (D("0.1"), 0)
    withdrawn = await p2p.offer(offer.id)  # no more probing of the seller's balance on it
    assert (withdrawn.remaining, withdrawn.state.value) == (D("1"), "cancelled")


async def test_offer_rules(p2p: P2PService, parties: tuple[uuid.UUID, uuid.UUID]) -> None:
    seller, buyer = parties
    with pytest.raises(BadRequest, match="min_amount"):
        await offer_of(p2p, seller, min_amount="0.6", max_amount="0.5")
    with pytest.raises(BadRequest, match="max_amount"):
        await offer_of(p2p, seller, amount="0.5", max_amount="0.6")
    with pytest.raises(BadRequest, match="fiat"):
        await p2p.post_offer(seller, currency="USD", fiat="USD", price=D(1), amount=D(1))
    offer = await offer_of(p2p, seller, min_amount="0.1", max_amount="0.5")
    for amount, code in (("0.05", "invalid_amount"), ("0.6", "invalid_amount")):
        with pytest.raises(BadRequest) as bad:
            await open_trade(p2p, buyer, offer, amount)
        assert bad.value.code == code
    with pytest.raises(BadRequest) as own:
        await open_trade(p2p, seller, offer, "0.1")
    assert own.value.code == "own_offer"
    with pytest.raises(NotFound):
        await p2p.open_trade(buyer, uuid.uuid4(), D("0.1"), "k")


async def test_cancelled_offer_takes_no_trade_but_its_trades_go_on(
    p2p: P2PService, wallet: WalletService, parties: tuple[uuid.UUID, uuid.UUID]
) -> None:
    seller, buyer = parties
    offer = await offer_of(p2p, seller)
    trade = await open_trade(p2p, buyer, offer, "0.2")
    with pytest.raises(Forbidden):
        await p2p.cancel_offer(offer.id, buyer)
    assert (await p2p.cancel_offer(offer.id, seller)).state == "cancelled"
    with pytest.raises(Conflict) as again:
        await p2p.cancel_offer(offer.id, seller)
    assert again.value.code == "invalid_transition"
    with pytest.raises(Conflict) as closed:
        await open_trade(p2p, buyer, offer, "0.2")
    assert closed.value.code == "offer_closed"
    assert offer.id not in [o.id for o in await p2p.offers(limit=500)]
    await p2p.mark_paid(trade.id, buyer)
    assert (await p2p.release(trade.id, seller)).state is TradeState.RELEASED
    assert await balance(wallet, seller) == (D("0.8"), 0)


async def test_offers_are_listed_cheapest_first_and_filtered(
    p2p: P2PService, wallet: WalletService
) -> None:
    seller = await new_user(wallet)
    eth = await p2p.post_offer(seller, currency="ETH", fiat="EUR", price=D("2000.5"),
                               amount=D("3"))  # fmt: skip
    cheap = await p2p.post_offer(seller, currency="ETH", fiat="EUR", price=D("1999"),
                                 amount=D("1"))  # fmt: skip
    assert (eth.min_amount, eth.max_amount) == (D("0.00000001"), D("3"))
    listed = [o.id for o in await p2p.offers(currency="ETH", fiat="EUR", limit=500)]
    assert listed.index(cheap.id) < listed.index(eth.id)
    assert eth.id not in [o.id for o in await p2p.offers(currency="BTC", limit=500)]
    assert eth.id not in [o.id for o in await p2p.offers(fiat="USD", limit=500)]


# -- idempotency and interrupted transitions ------------------------------------------------


async def test_opening_twice_with_one_key_is_one_trade(
    p2p: P2PService, wallet: WalletService, parties: tuple[uuid.UUID, uuid.UUID]
) -> None:
    seller, buyer = parties
    offer = await offer_of(p2p, seller)
    key = uuid.uuid4().hex
    first, replayed = await p2p.open_trade(buyer, offer.id, D("0.2"), key)
    again, replayed_again = await p2p.open_trade(buyer, offer.id, D("0.2"), key)
    assert (replayed, replayed_again) == (False, True)
    assert again == first

    concurrent_key = uuid.uuid4().hex
    results = await asyncio.gather(
        *(p2p.open_trade(buyer, offer.id, D("0.3"), concurrent_key) for _ in range(5))
    )
    assert len({trade.id for trade, _ in results}) == 1
    assert sorted(replayed for _, replayed in results) == [False] + [True] * 4
    assert (await p2p.offer(offer.id)).remaining == D("0.5")
    assert await balance(wallet, seller) == (D("0.5"), D("0.5"))
    assert await movements(wallet, results[0][0]) == ["escrow_lock"]

    with pytest.raises(Conflict) as reused:
        await p2p.open_trade(buyer, offer.id, D("0.1"), key)
    assert reused.value.code == "idempotency_key_reused"


async def test_an_open_cut_short_by_the_wallet_is_finished_by_the_retry(
    api: RunningApp, p2p: P2PService, wallet: WalletService, parties: tuple[uuid.UUID, uuid.UUID]
) -> None:
    seller, buyer = parties
    offer = await offer_of(p2p, seller)
    key = uuid.uuid4().hex
    async with service_fault(api, "wallet"):
        with pytest.raises(DependencyUnavailable) as down:
            await p2p.open_trade(buyer, offer.id, D("0.2"), key)
        assert down.value.service == "wallet"
    (pending,) = await p2p.trades(buyer)
    assert (pending.state, pending.moving_to) == (TradeState.PENDING, TradeState.OPEN)
    assert await balance(wallet, seller) == (D("1"), 0)

    trade, replayed = await p2p.open_trade(buyer, offer.id, D("0.2"), key)
    assert (trade.id, trade.state, replayed) == (pending.id, TradeState.OPEN, True)
    assert await balance(wallet, seller) == (D("0.8"), D("0.2"))
    assert (await p2p.offer(offer.id)).remaining == D("0.8")


async def test_a_release_cut_short_is_finished_by_the_next_call(
    api: RunningApp, p2p: P2PService, wallet: WalletService, parties: tuple[uuid.UUID, uuid.UUID]
) -> None:
    seller, buyer = parties
    trade = await open_trade(p2p, buyer, await offer_of(p2p, seller), "0.2")
    await p2p.mark_paid(trade.id, buyer)
    async with service_fault(api, "wallet"):
        with pytest.raises(DependencyUnavailable):
            await p2p.release(trade.id, seller)
    stuck = await p2p.trade(trade.id, seller)
    assert (stuck.state, stuck.moving_to) == (TradeState.PAID, TradeState.RELEASED)
    with pytest.raises(Conflict):
        # The release was decided: the buyer's dispute comes too late, and finishes it.
        await p2p.dispute(trade.id, buyer)
    done = await p2p.trade(trade.id, seller)
    assert (done.state, done.moving_to, done.fee) == (TradeState.RELEASED, None, D("0.002"))
    assert await balance(wallet, buyer) == (D("0.198"), 0)
    assert await movements(wallet, trade) == ["escrow_lock", "escrow_release"]


async def test_money_moved_but_not_recorded_is_recorded_once_by_the_resume_job(
    api: RunningApp, p2p: P2PService, wallet: WalletService, parties: tuple[uuid.UUID, uuid.UUID]
) -> None:
    """A crash after the wallet moved the money and before p2p recorded it."""
    seller, buyer = parties
    offer = await offer_of(p2p, seller)
    trade = await open_trade(p2p, buyer, offer, "0.2")
    async with service_fault(api, "wallet"):
        with pytest.raises(DependencyUnavailable):
            await p2p.cancel_trade(trade.id, buyer)
    await wallet.unlock_escrow(trade.escrow_reference)  # step 2 happened, step 3 did not
    assert (await p2p.trade(trade.id, buyer)).moving_to is TradeState.CANCELLED

    assert trade.id not in await p2p.resume_interrupted_trades(later(-60), limit=10_000)
    assert trade.id in await p2p.resume_interrupted_trades(later(1), limit=10_000)
    assert (await p2p.trade(trade.id, buyer)).state is TradeState.CANCELLED
    assert await movements(wallet, trade) == ["escrow_lock", "escrow_unlock"]
    assert await balance(wallet, seller) == (D("1"), 0)
    assert (await p2p.offer(offer.id)).remaining == D("1")
    assert trade.id not in await p2p.resume_interrupted_trades(later(1), limit=10_000)


async def test_racing_transitions_leave_the_escrow_matching_the_state(
    p2p: P2PService, wallet: WalletService, parties: tuple[uuid.UUID, uuid.UUID]
) -> None:
    """The buyer cancels and marks paid at once: one wins, and the money agrees with it."""
    seller, buyer = parties
    offer = await offer_of(p2p, seller)
    for _ in range(5):
        trade = await open_trade(p2p, buyer, offer, "0.1")
        outcomes = await asyncio.gather(
            p2p.cancel_trade(trade.id, buyer), p2p.mark_paid(trade.id, buyer),
            return_exceptions=True,
        )  # fmt: skip
        assert sum(isinstance(o, Trade) for o in outcomes) == 1, outcomes
        assert all(isinstance(o, Trade | Conflict) for o in outcomes), outcomes
        final = await p2p.trade(trade.id, buyer)
        lock = await wallet.escrow_lock(trade.escrow_reference)
        expected = {TradeState.CANCELLED: LockState.UNLOCKED, TradeState.PAID: LockState.HELD}
        assert lock.state is expected[final.state]
