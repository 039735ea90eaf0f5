"""Express buy use cases: admin-funded liquidity, quotes at the current price plus a markup,
orders filled out of the liquidity through the wallet, atomically and at most once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from isolation_harness.reference_app.boundary import Boundary, BoundedService
from isolation_harness.reference_app.clock import utc_now
from isolation_harness.reference_app.db import ServiceDatabase
from isolation_harness.reference_app.errors import (
    AppError,
    BadRequest,
    Conflict,
    DependencyUnavailable,
    Gone,
    NotFound,
)
from isolation_harness.reference_app.money import MAX_AMOUNT, UnquotableAmount, as_decimal
from isolation_harness.reference_app.prices import Prices
from isolation_harness.reference_app.services.express import queries as q
from isolation_harness.reference_app.services.express.domain import (
    Order,
    OrderState,
    Placement,
    Quote,
    QuoteState,
    order_states_before,
    quote_terms,
)
from isolation_harness.reference_app.services.wallet.domain import Posted
from isolation_harness.reference_app.services.wallet.service import WalletService
from isolation_harness.reference_app.settings import AppSettings

SERVICE = "express"
#: how many expired quotes one call of :meth:`ExpressService.expire_quotes` marks at most
EXPIRY_BATCH = 500


class ExpressService(BoundedService):
    """Sells from the platform's liquidity at a quoted price, through the wallet."""

    def __init__(
        self,
        db: ServiceDatabase,
        boundary: Boundary,
        wallet: WalletService,
        prices: Prices,
        settings: AppSettings,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.db = db
        self.boundary = boundary
        self.wallet = wallet
        self.prices = prices
        self.settings = settings
        self.markup = settings.express_markup
        self.quote_ttl = timedelta(seconds=settings.express_quote_ttl_seconds)
        self._clock = clock

    # -- liquidity (admin) ----------------------------------------------------------------

    async def fund_liquidity(self, currency: str, amount: Decimal, idempotency_key: str) -> Posted:
        """Move ``amount`` of ``currency`` from the treasury into the liquidity (idempotent
        per key; the key reused for another currency or amount is a 409)."""
        self._require_currency(currency)
        return await self.wallet.fund_liquidity(
            currency, amount, idempotency_key=f"express:liquidity:{idempotency_key}"
        )

    async def liquidity(self) -> dict[str, Decimal]:
        """The liquidity level of every known currency (zero where never funded)."""
        levels = await self.wallet.liquidity()
        return {c: levels.get(c, Decimal(0)) for c in sorted(self.settings.currencies)}

    # -- quotes ---------------------------------------------------------------------------

    async def request_quote(self, user_id: uuid.UUID, buy: str, pay: str, amount: Decimal) -> Quote:
        """Quote buying ``amount`` of ``buy``, paid in ``pay``, at the current price plus
        the markup.

        Currencies and amount are validated at the edge; a price the source refuses (down,
        slow, stale) is :class:`DependencyUnavailable` naming the cause, and nothing is
        written.
        """
        self._require_currency(buy)
        self._require_currency(pay)
        if buy == pay:
            raise BadRequest(
                "buy and pay must be different currencies", service=SERVICE, code="same_currency"
            )
        try:
            market = await self.prices.price(buy, pay)
        except DependencyUnavailable as exc:
            # Answered as this service's 503, with the price source's code and cause.
            raise DependencyUnavailable(exc.message, service=SERVICE, code=exc.code) from exc
        try:
            terms = quote_terms(
                price=market.price,
                buy_amount=amount,
                markup=self.markup,
                pay_places=self.settings.currencies[pay],
                max_amount=MAX_AMOUNT,
            )
        except UnquotableAmount as exc:
            raise BadRequest(str(exc), service=SERVICE, code=exc.code) from None
        now = self._clock()
        async with self.db.cursor() as cur:
            await cur.execute(
                q.INSERT_QUOTE,
                {"id": str(uuid.uuid4()), "user_id": str(user_id), "buy_currency": buy,
                 "pay_currency": pay, "buy_amount": amount, "pay_amount": terms.pay_amount,
                 "cost": terms.cost, "fee": terms.fee, "price": market.price,
                 "markup": self.markup, "rate": terms.rate, "price_as_of": market.as_of,
                 "created_at": now, "expires_at": now + self.quote_ttl},
            )  # fmt: skip
            return _quote(await cur.fetchone())

    async def quote(self, user_id: uuid.UUID, quote_id: uuid.UUID) -> Quote:
        """The user's quote; :class:`NotFound` if absent or someone else's."""
        async with self.db.cursor() as cur:
            await cur.execute(q.USER_QUOTE, {"id": str(quote_id), "user_id": str(user_id)})
            row = await cur.fetchone()
        if row is None:
            raise _quote_not_found(quote_id)
        return _quote(row)

    async def expire_quotes(self) -> int:
        """Mark open quotes past their deadline expired (for the scheduled cleanup; safe
        with several workers at once); returns how many this call marked."""
        async with self.db.cursor() as cur:
            await cur.execute(q.EXPIRE_QUOTES, {"now": self._clock(), "limit": EXPIRY_BATCH})
            return int(cur.rowcount)

    # -- orders ---------------------------------------------------------------------------

    async def order(self, user_id: uuid.UUID, order_id: uuid.UUID) -> Order:
        """The user's order; :class:`NotFound` if absent or someone else's."""
        async with self.db.cursor() as cur:
            await cur.execute(q.USER_ORDER, {"id": str(order_id), "user_id": str(user_id)})
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no order {order_id}", service=SERVICE, code="order_not_found")
        return _order(row)

    async def place_order(
        self, user_id: uuid.UUID, quote_id: uuid.UUID, idempotency_key: str
    ) -> Placement:
        """Buy at the quote's terms, once: a repeat answers the first order.

        Expired quote: :class:`Gone`; liquidity short: :class:`Conflict`
        ``insufficient_liquidity``; the user short: :class:`InsufficientFunds`. A refusal
        moves nothing and may be retried (with any key) until the quote's deadline.

        The steps, in this order, each safe to repeat:

        1. place: in the express schema, with the quote locked, create the quote's one
           order (``pending``), or take up its existing one. A retry before the deadline
           carries a pending order on; after it, the order is settled by what the wallet
           holds under its key (:meth:`_settle`): filled if the money moved, else rejected
           with the key spent, so that no retry moves the money at an old price.
        2. move the money in the wallet (its own database, one transaction): the payment
           from the user, the bought amount out of the liquidity, under an idempotency key
           derived from the order: whatever the retries and concurrent calls, the ledger
           holds the movement at most once, and a repeat answers the first transaction.
        3. mark the order ``filled`` with the ledger transaction.

        The wallet goes second because it is the truth: marking the order filled first would
        claim a movement that may never happen, and placing it first records the intent, so
        that an interrupted order is found and finished by the next touch. No express
        connection is held during step 2, so a slow wallet cannot exhaust the express pool.
        """
        now = self._clock()
        expired: Quote | None = None
        placed_now = False
        async with self.db.transaction() as cur:
            quote = await self._lock_quote(cur, user_id, quote_id)
            order = await self._order_by_key(cur, user_id, idempotency_key)
            if order is not None and order.quote.id != quote_id:
                raise Conflict(
                    f"Idempotency-Key {idempotency_key!r} was used for the order on quote "
                    f"{order.quote.id}",
                    service=SERVICE,
                    code="idempotency_key_reused",
                )
            order = await self._order_of_quote(cur, quote_id)
            if order is None:
                if quote.state is QuoteState.OPEN and not quote.is_past_deadline(now):
                    order = await self._create_order(cur, quote, idempotency_key, now)
                    placed_now = True
                else:
                    await cur.execute(q.EXPIRE_QUOTE, {"id": str(quote_id), "now": now})
                    expired = quote
            elif order.state is OrderState.REJECTED:
                if quote.is_past_deadline(now):
                    expired = quote
                else:
                    await cur.execute(
                        q.RETRY_ORDER,
                        {"id": str(order.id), "from": order_states_before(OrderState.PENDING)},
                    )
                    order = await self._order_of_quote(cur, quote_id)
                    placed_now = True
        assert order is not None or expired is not None
        if (order is not None and order.state is OrderState.PENDING and not placed_now
                and quote.is_past_deadline(now)):  # fmt: skip
            # An order cut short (its wallet call never answered), retried after the
            # deadline: settled by what the wallet holds, never carried on at the old price.
            order = await self._settle(order)
            if order.state is OrderState.REJECTED:
                expired = quote
        # Out of the transaction, so that the expiry is written before it is answered.
        if expired is not None:
            raise Gone(
                f"quote {quote_id} expired at {expired.expires_at.isoformat()}",
                service=SERVICE,
                code="quote_expired",
            )
        assert order is not None
        if order.state is OrderState.FILLED:
            return Placement(order, replayed=True)
        # PENDING: placed now, or by a placement that is running or was interrupted; either
        # way this one carries it on (the wallet's idempotency key makes that safe).
        quote = order.quote
        try:
            posted = await self.wallet.buy_from_liquidity(
                user_id,
                buy=(quote.buy_currency, quote.buy_amount),
                pay=(quote.pay_currency, quote.pay_amount),
                fee=quote.fee,
                idempotency_key=order.wallet_key,
                reference=order.reference,
            )
        except AppError as exc:
            if exc.status >= 500:
                raise  # unknown outcome: the order stays pending, a retry settles it
            if exc.code == "idempotency_key_reused":
                # settled meanwhile as never filled (the key spent): nothing moved
                raise Gone(f"quote {quote_id} expired at {quote.expires_at.isoformat()}",
                           service=SERVICE, code="quote_expired") from None  # fmt: skip
            # The wallet refused and rolled back: nothing moved.
            filled = await self._reject(order, exc.code)
            if filled is not None:  # meanwhile a concurrent placement had it filled
                return Placement(filled, replayed=True)
            raise
        async with self.db.cursor() as cur:
            await self._mark_filled(cur, order, posted.transaction_id)
            order = await self._order_of_quote(cur, quote_id)
        assert order is not None
        if order.state is not OrderState.FILLED:  # cannot happen: nothing leaves filled
            raise Conflict(
                f"order {order.id} is {order.state.value} though the wallet posted "
                f"transaction {posted.transaction_id}",
                service=SERVICE,
                code="invalid_transition",
            )
        return Placement(order, replayed=posted.replayed)

    async def settle_stale_orders(self, before: datetime, limit: int = 100) -> list[uuid.UUID]:
        """Orders placed and never finished, on quotes past a deadline before ``before``:
        each ends with one outcome, by what the wallet holds under the order's key (filled
        with its transaction, or rejected with nothing moved); return their ids."""
        async with self.db.cursor() as cur:
            await cur.execute(q.STALE_ORDERS, {"before": before, "limit": limit})
            stale = [_order(row) for row in await cur.fetchall()]
        for order in stale:
            await self._settle(order)
        return [order.id for order in stale]

    async def _settle(self, order: Order) -> Order:
        """An order whose wallet answer was lost, past its quote's deadline: filled if the
        wallet posted it, else rejected, and the key spent so that it never will be."""
        posted = await self.wallet.void_key(order.wallet_key, order.reference)
        async with self.db.cursor() as cur:
            if posted is not None:
                await self._mark_filled(cur, order, posted.transaction_id)
            else:
                await cur.execute(
                    q.REJECT_ORDER,
                    {"id": str(order.id), "reason": "quote_expired",
                     "from": (OrderState.PENDING.value,)},
                )  # fmt: skip
            settled = await self._order_of_quote(cur, order.quote.id)
        assert settled is not None
        return settled

    # -- helpers --------------------------------------------------------------------------

    async def _mark_filled(self, cur: Any, order: Order, transaction_id: int) -> None:
        await cur.execute(
            q.MARK_FILLED,
            {"id": str(order.id), "now": self._clock(), "transaction_id": transaction_id,
             "from": order_states_before(OrderState.FILLED)},
        )  # fmt: skip

    def _require_currency(self, currency: str) -> None:
        if currency not in self.settings.currencies:
            raise BadRequest(
                f"unknown currency {currency}", service=SERVICE, code="invalid_currency"
            )

    async def _lock_quote(self, cur: Any, user_id: uuid.UUID, quote_id: uuid.UUID) -> Quote:
        await cur.execute(q.LOCK_USER_QUOTE, {"id": str(quote_id), "user_id": str(user_id)})
        row = await cur.fetchone()
        if row is None:
            raise _quote_not_found(quote_id)
        return _quote(row)

    async def _order_of_quote(self, cur: Any, quote_id: uuid.UUID) -> Order | None:
        await cur.execute(q.ORDER_OF_QUOTE, {"quote_id": str(quote_id)})
        row = await cur.fetchone()
        return _order(row) if row is not None else None

    async def _order_by_key(self, cur: Any, user_id: uuid.UUID, key: str) -> Order | None:
        await cur.execute(q.USER_ORDER_BY_KEY, {"user_id": str(user_id), "key": key})
        row = await cur.fetchone()
        return _order(row) if row is not None else None

    async def _create_order(self, cur: Any, quote: Quote, key: str, now: datetime) -> Order:
        await cur.execute(
            q.INSERT_ORDER,
            {"id": str(uuid.uuid4()), "quote_id": str(quote.id), "user_id": str(quote.user_id),
             "key": key, "now": now},
        )  # fmt: skip
        if await cur.fetchone() is None:  # the key, taken since it was looked up
            raise Conflict(
                f"Idempotency-Key {key!r} was used for another order",
                service=SERVICE,
                code="idempotency_key_reused",
            )
        await cur.execute(q.MARK_QUOTE_ORDERED, {"id": str(quote.id)})
        order = await self._order_of_quote(cur, quote.id)
        assert order is not None
        return order

    async def _reject(self, order: Order, reason: str) -> Order | None:
        """Record the wallet's refusal; returns the order if it was filled meanwhile."""
        async with self.db.cursor() as cur:
            await cur.execute(
                q.REJECT_ORDER,
                {"id": str(order.id), "reason": reason,
                 "from": order_states_before(OrderState.REJECTED)},
            )  # fmt: skip
            if await cur.fetchone() is not None:
                return None
            current = await self._order_of_quote(cur, order.quote.id)
        return current if current is not None and current.state is OrderState.FILLED else None


def _quote_not_found(quote_id: uuid.UUID) -> NotFound:
    return NotFound(f"no quote {quote_id}", service=SERVICE, code="quote_not_found")


def _quote(row: Any) -> Quote:
    (id_, user_id, buy_currency, pay_currency, buy_amount, pay_amount, cost, fee, price,
     markup, rate, price_as_of, state, created_at, expires_at) = row  # fmt: skip
    return Quote(
        id=uuid.UUID(str(id_)),
        user_id=uuid.UUID(str(user_id)),
        buy_currency=buy_currency,
        pay_currency=pay_currency,
        buy_amount=as_decimal(buy_amount),
        pay_amount=as_decimal(pay_amount),
        cost=as_decimal(cost),
        fee=as_decimal(fee),
        price=as_decimal(price),
        markup=as_decimal(markup),
        rate=as_decimal(rate),
        price_as_of=price_as_of.astimezone(UTC),
        state=QuoteState(state),
        created_at=created_at.astimezone(UTC),
        expires_at=expires_at.astimezone(UTC),
    )


def _order(row: Any) -> Order:
    id_, state, reason, created_at, filled_at, transaction_id = row[:6]
    return Order(
        id=uuid.UUID(str(id_)),
        quote=_quote(row[6:]),
        state=OrderState(state),
        reason=reason,
        created_at=created_at.astimezone(UTC),
        filled_at=filled_at.astimezone(UTC) if filled_at is not None else None,
        transaction_id=transaction_id,
    )
