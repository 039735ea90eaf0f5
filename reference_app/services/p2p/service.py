"""P2P use cases: offers, and trades whose escrow moves in the wallet.

The wallet is another schema behind another pool: no transaction spans a trade row and the
seller's escrow. A transition that moves money therefore goes in three steps, each safe to
repeat, so that a crash or timeout between any two neither loses nor duplicates money:

1. **Record the intent** in p2p, under the trade's row lock: ``moving_to = <target>``. The
   transition is checked here, once; while an intent is recorded no other transition starts.
   Opening a trade is the same: the trade is inserted as ``pending`` with the intent
   ``open`` (and the offer's remaining amount taken) in one p2p transaction.
2. **Move the money** in the wallet, under the trade's escrow reference. The wallet is
   idempotent per reference: locking twice is one lock, releasing or unlocking twice is one
   movement. If this step fails (wallet down, time limit, crash), the intent stays.
3. **Record the result**: ``state = <target>``, intent cleared (and the amount given back to
   the offer if the seller keeps the crypto), compare-and-set on the intent, so that of two
   finishers only one writes.

Whoever next touches the trade (a retry with the same Idempotency-Key, any transition on it,
the expiry job, :meth:`P2PService.resume_interrupted_trades`) first finishes a recorded
intent, so money that moved is always followed by the trade's state. Money never moves
before its intent is recorded, so the wallet is never ahead of an intent that was not made.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import aiopg

from isolation_harness.reference_app.boundary import Boundary, BoundedService
from isolation_harness.reference_app.db import ServiceDatabase, rows_as_dicts
from isolation_harness.reference_app.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InsufficientFunds,
    NotFound,
)
from isolation_harness.reference_app.money import unit
from isolation_harness.reference_app.services.p2p import queries as q
from isolation_harness.reference_app.services.p2p.domain import (
    ESCROW_MOVES,
    FIAT_CURRENCIES,
    RESOLUTIONS,
    RETURNS_TO_OFFER,
    Actor,
    BadTerms,
    EscrowMove,
    NotAllowed,
    Offer,
    OfferState,
    Refused,
    StateConflict,
    Trade,
    TradeState,
    check_offer_terms,
    check_transition,
    fee_for,
    fiat_total,
)
from isolation_harness.reference_app.services.wallet.domain import LockState
from isolation_harness.reference_app.services.wallet.service import WalletService
from isolation_harness.reference_app.settings import AppSettings

SERVICE = "p2p"
#: how often a transition waits for another one under way on the same trade before giving up
MAX_ATTEMPTS = 3

#: who calls: a user (the trade's buyer or seller, else a stranger), or the admin or system
Caller = uuid.UUID | Actor

log = logging.getLogger("reference_app")


class P2PService(BoundedService):
    """Offers and trades; the trades' money is held and moved by the wallet."""

    def __init__(
        self, db: ServiceDatabase, boundary: Boundary, wallet: WalletService, settings: AppSettings
    ) -> None:
        self.db = db
        self.boundary = boundary
        self.wallet = wallet
        self.settings = settings

    # -- offers ---------------------------------------------------------------------------

    async def post_offer(
        self,
        seller: uuid.UUID,
        *,
        currency: str,
        fiat: str,
        price: Decimal,
        amount: Decimal,
        min_amount: Decimal | None = None,
        max_amount: Decimal | None = None,
    ) -> Offer:
        """Offer ``amount`` of ``currency`` at ``price`` ``fiat`` per unit.

        A trade takes between ``min_amount`` (default: the currency's smallest unit) and
        ``max_amount`` (default: all of it). The seller's funds are locked per trade, not here.
        """
        if currency not in self.settings.currencies:
            raise BadRequest(f"currency: unknown {currency!r}", service=SERVICE,
                             code="invalid_currency")  # fmt: skip
        if fiat not in FIAT_CURRENCIES:
            raise BadRequest(f"fiat: unknown {fiat!r}", service=SERVICE, code="invalid_currency")
        if min_amount is None:
            min_amount = unit(self.settings.currencies[currency])
        if max_amount is None:
            max_amount = amount
        with _refusals():
            check_offer_terms(currency, fiat, price, amount, min_amount, max_amount)
        async with self.db.cursor() as cur:
            await cur.execute(
                q.INSERT_OFFER,
                {"id": str(uuid.uuid4()), "seller": str(seller), "currency": currency,
                 "fiat": fiat, "price": price, "amount": amount, "min_amount": min_amount,
                 "max_amount": max_amount},
            )  # fmt: skip
            return _offer(await cur.fetchone())

    async def offers(
        self, *, currency: str | None = None, fiat: str | None = None, limit: int = 50
    ) -> list[Offer]:
        """Open offers that can still take a trade, cheapest first."""
        async with self.db.cursor() as cur:
            await cur.execute(q.OPEN_OFFERS, {"currency": currency, "fiat": fiat, "limit": limit})
            return [_offer(row) for row in await cur.fetchall()]

    async def offer(self, offer_id: uuid.UUID) -> Offer:
        async with self.db.cursor() as cur:
            await cur.execute(q.OFFER, {"id": str(offer_id)})
            row = await cur.fetchone()
        if row is None:
            raise NotFound("no such offer", service=SERVICE, code="offer_not_found")
        return _offer(row)

    async def cancel_offer(self, offer_id: uuid.UUID, seller: uuid.UUID) -> Offer:
        """Withdraw the seller's offer; trades already open on it go on."""
        async with self.db.transaction() as cur:
            await cur.execute(q.OFFER_FOR_UPDATE, {"id": str(offer_id)})
            row = await cur.fetchone()
            if row is None:
                raise NotFound("no such offer", service=SERVICE, code="offer_not_found")
            offer = _offer(row)
            if offer.seller != seller:
                raise Forbidden("only the seller can cancel an offer", service=SERVICE,
                                code="not_allowed")  # fmt: skip
            if offer.state is not OfferState.OPEN:
                raise Conflict(f"the offer is {offer.state.value}", service=SERVICE,
                               code="invalid_transition")  # fmt: skip
            await cur.execute(q.CANCEL_OFFER, {"id": str(offer_id)})
            return _offer(await cur.fetchone())

    # -- trades: reads --------------------------------------------------------------------

    async def trade(self, trade_id: uuid.UUID, caller: Caller) -> Trade:
        """The trade, for its buyer, its seller, the admin or the system; others: 404."""
        trade, _ = await self._visible(trade_id, caller)
        return trade

    async def trades(self, user: uuid.UUID, limit: int = 50) -> list[Trade]:
        """The user's trades as buyer or seller, newest first."""
        async with self.db.cursor() as cur:
            await cur.execute(q.USER_TRADES, {"user": str(user), "limit": limit})
            return [_trade(row) for row in await cur.fetchall()]

    async def history(self, trade_id: uuid.UUID, caller: Caller) -> list[dict[str, Any]]:
        """Every state the trade reached, who asked for it and when."""
        await self._visible(trade_id, caller)
        async with self.db.cursor() as cur:
            await cur.execute(q.TRADE_EVENTS, {"trade_id": str(trade_id)})
            return rows_as_dicts(cur, await cur.fetchall())

    # -- trades: transitions --------------------------------------------------------------

    async def open_trade(
        self, buyer: uuid.UUID, offer_id: uuid.UUID, amount: Decimal, idempotency_key: str
    ) -> tuple[Trade, bool]:
        """Open a trade of ``amount`` on the offer, the seller's funds locked in escrow.

        Returns the trade and whether it was a replay: the same buyer and key give the same
        trade (and finish its opening if an earlier call was cut short).
        """
        trade, replayed = await self._record_trade(buyer, offer_id, amount, idempotency_key)
        if trade.moving_to is not None:
            trade = await self._finish(trade)
        if trade.state is TradeState.FAILED:
            # Not the wallet's message: that one would tell the buyer the seller's balance.
            raise Conflict(
                "the seller cannot cover this trade now: the offer is withdrawn",
                service=SERVICE, code="seller_cannot_cover", trade_id=str(trade.id),
            )  # fmt: skip
        return trade, replayed

    async def mark_paid(self, trade_id: uuid.UUID, buyer: uuid.UUID) -> Trade:
        """The buyer says the fiat is sent."""
        return await self._move(trade_id, buyer, TradeState.PAID)

    async def release(self, trade_id: uuid.UUID, seller: uuid.UUID) -> Trade:
        """The seller got the fiat: the escrow goes to the buyer, less the platform's fee."""
        return await self._move(trade_id, seller, TradeState.RELEASED)

    async def cancel_trade(self, trade_id: uuid.UUID, buyer: uuid.UUID) -> Trade:
        """The buyer gives up before paying: the escrow goes back to the seller."""
        return await self._move(trade_id, buyer, TradeState.CANCELLED)

    async def dispute(self, trade_id: uuid.UUID, user: uuid.UUID) -> Trade:
        """Either party contests a paid trade: the escrow stays until the admin decides."""
        return await self._move(trade_id, user, TradeState.DISPUTED)

    async def resolve_dispute(self, trade_id: uuid.UUID, winner: Actor) -> Trade:
        """The admin's decision: the buyer gets the escrow (fee charged) or the seller keeps it."""
        if winner not in RESOLUTIONS:
            raise BadRequest("winner: must be buyer or seller", service=SERVICE,
                             code="invalid_field")  # fmt: skip
        return await self._move(trade_id, Actor.ADMIN, RESOLUTIONS[winner])

    async def expire_due_trades(self, now: datetime.datetime, limit: int = 100) -> list[uuid.UUID]:
        """Expire open trades past their time (escrow back to the seller); return their ids.

        Safe to run often and concurrently: a trade expires once, and one that was paid or
        cancelled meanwhile is left alone.
        """
        async with self.db.cursor() as cur:
            await cur.execute(q.DUE_TRADES, {"now": now, "limit": limit})
            due = [uuid.UUID(str(row[0])) for row in await cur.fetchall()]
        expired = []
        for trade_id in due:
            try:
                trade = await self._move(trade_id, Actor.SYSTEM, TradeState.EXPIRED, now=now)
            except Conflict as exc:
                log.info("p2p: trade %s not expired: %s", trade_id, exc.message)
                continue
            expired.append(trade.id)
        return expired

    async def dispute_unreleased_trades(
        self, now: datetime.datetime, limit: int = 100
    ) -> list[uuid.UUID]:
        """Paid trades the seller has not released for ``trade_release_seconds``: disputed,
        so that the admin decides (the escrow stays); return their ids. Safe to run often
        and concurrently: a trade released or disputed meanwhile is left alone."""
        before = now - datetime.timedelta(seconds=self.settings.trade_release_seconds)
        async with self.db.cursor() as cur:
            await cur.execute(q.UNRELEASED_TRADES, {"before": before, "limit": limit})
            due = [uuid.UUID(str(row[0])) for row in await cur.fetchall()]
        disputed = []
        for trade_id in due:
            try:
                trade = await self._move(trade_id, Actor.SYSTEM, TradeState.DISPUTED)
            except Conflict as exc:
                log.info("p2p: trade %s not disputed: %s", trade_id, exc.message)
                continue
            disputed.append(trade.id)
        return disputed

    async def resume_interrupted_trades(
        self, before: datetime.datetime, limit: int = 100
    ) -> list[uuid.UUID]:
        """Finish transitions recorded before ``before`` and left unfinished; return the ids."""
        async with self.db.cursor() as cur:
            await cur.execute(q.INTERRUPTED_TRADES, {"before": before, "limit": limit})
            ids = [uuid.UUID(str(row[0])) for row in await cur.fetchall()]
        resumed = []
        for trade_id in ids:
            trade, _ = await self._visible(trade_id, Actor.SYSTEM)
            if trade.moving_to is not None:
                await self._finish(trade)
                resumed.append(trade_id)
        return resumed

    # -- the steps ------------------------------------------------------------------------

    async def _visible(self, trade_id: uuid.UUID, caller: Caller) -> tuple[Trade, Actor]:
        async with self.db.cursor() as cur:
            await cur.execute(q.TRADE, {"id": str(trade_id)})
            row = await cur.fetchone()
        if row is None:
            raise _no_such_trade()
        trade = _trade(row)
        return trade, _actor(trade, caller)

    async def _record_trade(
        self, buyer: uuid.UUID, offer_id: uuid.UUID, amount: Decimal, key: str
    ) -> tuple[Trade, bool]:
        """Step 1 of opening: the trade as ``pending``, the amount taken from the offer."""
        by_key = {"buyer": str(buyer), "key": key}
        async with self.db.transaction() as cur:
            await cur.execute(q.TRADE_BY_KEY, by_key)
            row = await cur.fetchone()
            if row is not None:
                return _same_trade(_trade(row), offer_id, amount), True
            await cur.execute(q.LOCK_BUYER, by_key)
            await cur.execute(q.TRADES_UNDER_WAY, by_key)
            under_way = int((await cur.fetchone())[0])
            if under_way >= self.settings.max_open_trades:
                raise Conflict(
                    f"{under_way} trades under way: at most {self.settings.max_open_trades} "
                    "at once (finish, cancel or let one expire first)",
                    service=SERVICE, code="too_many_open_trades",
                )  # fmt: skip
            # The offer's row lock orders concurrent trades on it: none can oversell it.
            await cur.execute(q.OFFER_FOR_UPDATE, {"id": str(offer_id)})
            row = await cur.fetchone()
            if row is None:
                raise NotFound("no such offer", service=SERVICE, code="offer_not_found")
            offer = _offer(row)
            with _refusals():
                offer.check_fill(buyer, amount)
            await cur.execute(
                q.INSERT_TRADE,
                {"id": str(uuid.uuid4()), "offer_id": str(offer.id), "seller": str(offer.seller),
                 "buyer": str(buyer), "currency": offer.currency, "fiat": offer.fiat,
                 "amount": amount, "price": offer.price,
                 "fiat_total": fiat_total(amount, offer.price, FIAT_CURRENCIES[offer.fiat]),
                 "key": key, "ttl": self.settings.trade_ttl_seconds},
            )  # fmt: skip
            row = await cur.fetchone()
            if row is not None:
                trade = _trade(row)
                await cur.execute(q.TAKE_FROM_OFFER, {"id": str(offer.id), "amount": amount})
                await _record_event(cur, trade.id, TradeState.PENDING, Actor.BUYER)
                return trade, False
        # A concurrent call with the same key inserted first (we waited on its row).
        async with self.db.cursor() as cur:
            await cur.execute(q.TRADE_BY_KEY, by_key)
            return _same_trade(_trade(await cur.fetchone()), offer_id, amount), True

    async def _move(
        self,
        trade_id: uuid.UUID,
        caller: Caller,
        target: TradeState,
        *,
        now: datetime.datetime | None = None,
    ) -> Trade:
        """Take the trade to ``target``: step 1 here, steps 2 and 3 in :meth:`_finish`."""
        trade, _ = await self._visible(trade_id, caller)
        for _attempt in range(MAX_ATTEMPTS):
            if trade.moving_to is not None:
                trade = await self._finish(trade)  # what an earlier call left unfinished
            async with self.db.transaction() as cur:
                await cur.execute(q.TRADE_FOR_UPDATE, {"id": str(trade_id)})
                trade = _trade(await cur.fetchone())
                if trade.moving_to is not None:
                    continue  # another transition began meanwhile: finish it, then judge
                actor = _actor(trade, caller)
                with _refusals():
                    check_transition(trade.state, target, actor)
                if target is TradeState.EXPIRED and now is not None and trade.expires_at > now:
                    raise Conflict("the trade is not due to expire", service=SERVICE,
                                   code="not_due")  # fmt: skip
                params = {"id": str(trade_id), "from": trade.state.value,
                          "target": target.value, "state": target.value,
                          "actor": actor.value}  # fmt: skip
                if target not in ESCROW_MOVES:
                    await cur.execute(q.SET_STATE, params)
                    trade = _trade(await cur.fetchone())
                    await _record_event(cur, trade.id, target, actor)
                    return trade
                await cur.execute(q.SET_INTENT, params)
                trade = _trade(await cur.fetchone())
            return await self._finish(trade)
        raise Conflict("the trade is busy, try again", service=SERVICE, code="trade_busy")

    async def _finish(self, trade: Trade) -> Trade:
        """Steps 2 and 3: the wallet's part of the trade's intent, then the state it reached.

        Idempotent, and safe to run concurrently with itself: the wallet's movements are
        keyed by the escrow reference, and only one finisher's compare-and-set matches.
        """
        intent, actor = trade.moving_to, trade.moving_by
        if intent is None or actor is None:
            return trade
        reached, fee, locked = intent, None, False
        move = ESCROW_MOVES[intent]
        reference = trade.escrow_reference
        if move is EscrowMove.LOCK:
            try:
                lock = await self.wallet.lock_for_escrow(
                    reference, trade.seller, trade.currency, trade.amount
                )
            except InsufficientFunds:
                reached = TradeState.FAILED  # the wallet rolled back: nothing is locked
            else:
                locked = lock.state is LockState.HELD
        elif move is EscrowMove.RELEASE:
            fee = fee_for(
                trade.amount, self.settings.p2p_fee_rate, self.settings.currencies[trade.currency]
            )
            # The fee charged is the one recorded by the first release, should the rate change.
            fee = (await self.wallet.release_escrow(reference, to_user=trade.buyer, fee=fee)).fee
        else:
            await self.wallet.unlock_escrow(reference)
        async with self.db.transaction() as cur:
            await cur.execute(
                q.FINISH_INTENT,
                {"id": str(trade.id), "intent": intent.value, "state": reached.value,
                 "fee": fee},
            )  # fmt: skip
            row = await cur.fetchone()
            if row is not None:
                finished = _trade(row)
                if reached in RETURNS_TO_OFFER:
                    await cur.execute(
                        q.RETURN_TO_OFFER, {"id": str(trade.offer_id), "amount": trade.amount}
                    )
                if reached is TradeState.FAILED:
                    # The seller could not cover it: the offer is withdrawn, so that no buyer
                    # learns the seller's balance by trying amount after amount on it.
                    await cur.execute(q.CANCEL_OFFER, {"id": str(trade.offer_id)})
                await _record_event(cur, trade.id, reached, actor)
                return finished
        current, _ = await self._visible(trade.id, Actor.SYSTEM)
        if locked and current.state is TradeState.FAILED:
            # A concurrent finisher found the seller short and failed the trade, then our
            # lock found the funds: give them back, or they would stay in escrow for nothing.
            await self.wallet.unlock_escrow(reference)
        return current


def _actor(trade: Trade, caller: Caller) -> Actor:
    if isinstance(caller, Actor):
        return caller
    party = trade.party(caller)
    if party is None:
        raise _no_such_trade()  # someone else's trade does not exist for this caller
    return party


def _no_such_trade() -> NotFound:
    return NotFound("no such trade", service=SERVICE, code="trade_not_found")


def _same_trade(trade: Trade, offer_id: uuid.UUID, amount: Decimal) -> Trade:
    if (trade.offer_id, trade.amount) != (offer_id, amount):
        raise Conflict(
            "this Idempotency-Key was used for another trade", service=SERVICE,
            code="idempotency_key_reused", trade_id=str(trade.id),
        )  # fmt: skip
    return trade


async def _record_event(
    cur: aiopg.Cursor, trade_id: uuid.UUID, state: TradeState, actor: Actor
) -> None:
    await cur.execute(
        q.INSERT_EVENT, {"trade_id": str(trade_id), "state": state.value, "actor": actor.value}
    )


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """The domain's refusals as the app's errors."""
    try:
        yield
    except BadTerms as exc:
        raise BadRequest(str(exc), service=SERVICE, code=exc.code) from None
    except NotAllowed as exc:
        raise Forbidden(str(exc), service=SERVICE, code=exc.code) from None
    except StateConflict as exc:
        raise Conflict(str(exc), service=SERVICE, code=exc.code) from None
    except Refused as exc:  # a new kind of refusal: answer it as a conflict
        raise Conflict(str(exc), service=SERVICE, code=exc.code) from None


def _offer(row: Any) -> Offer:
    (id_, seller, currency, fiat, price, amount, remaining, min_amount, max_amount, state,
     created_at) = row  # fmt: skip
    return Offer(
        id=uuid.UUID(str(id_)),
        seller=uuid.UUID(str(seller)),
        currency=currency,
        fiat=fiat,
        price=Decimal(price),
        amount=Decimal(amount),
        remaining=Decimal(remaining),
        min_amount=Decimal(min_amount),
        max_amount=Decimal(max_amount),
        state=OfferState(state),
        created_at=created_at,
    )


def _trade(row: Any) -> Trade:
    (id_, offer_id, seller, buyer, currency, fiat, amount, price, total, fee, state, moving_to,
     moving_by, created_at, expires_at, updated_at) = row  # fmt: skip
    return Trade(
        id=uuid.UUID(str(id_)),
        offer_id=uuid.UUID(str(offer_id)),
        seller=uuid.UUID(str(seller)),
        buyer=uuid.UUID(str(buyer)),
        currency=currency,
        fiat=fiat,
        amount=Decimal(amount),
        price=Decimal(price),
        fiat_total=Decimal(total),
        fee=Decimal(fee) if fee is not None else None,
        state=TradeState(state),
        moving_to=TradeState(moving_to) if moving_to is not None else None,
        moving_by=Actor(moving_by) if moving_by is not None else None,
        created_at=created_at,
        expires_at=expires_at,
        updated_at=updated_at,
    )
