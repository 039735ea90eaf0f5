"""Swap use cases: quotes from the price source with spread, fee and expiry; execution
through the wallet, atomic and at most once per quote."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from isolation_harness.reference_app.boundary import Boundary, BoundedService
from isolation_harness.reference_app.clock import utc_now
from isolation_harness.reference_app.db import ServiceDatabase
from isolation_harness.reference_app.errors import AppError, BadRequest, Conflict, Gone, NotFound
from isolation_harness.reference_app.money import MAX_AMOUNT, UnquotableAmount, as_decimal
from isolation_harness.reference_app.prices import Prices
from isolation_harness.reference_app.services.swap import queries as q
from isolation_harness.reference_app.services.swap.domain import (
    Execution,
    Quote,
    QuoteState,
    quote_terms,
    states_before,
)
from isolation_harness.reference_app.services.wallet.service import WalletService
from isolation_harness.reference_app.settings import AppSettings

SERVICE = "swap"
#: the states the deadline alone expires: a claimed quote is settled by the wallet's record
UNCLAIMED = (QuoteState.OPEN.value,)


class SwapService(BoundedService):
    """Quotes a price for a while, then exchanges at it through the wallet."""

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
        self._clock = clock

    async def request_quote(
        self, user_id: uuid.UUID, sell: str, buy: str, amount: Decimal
    ) -> Quote:
        """Quote selling ``amount`` of ``sell`` for ``buy`` at the current price.

        Currencies and amount are validated at the edge; a price that is missing or stale
        (see :mod:`reference_app.services.background.feed`), or a price source that is down
        or slow when there is no feed, is :class:`DependencyUnavailable` naming swap and the
        cause, and nothing is written.
        """
        currencies = self.settings.currencies
        if sell not in currencies or buy not in currencies:
            raise BadRequest(
                f"unknown currency in {sell}-{buy}", service=SERVICE, code="invalid_currency"
            )
        if sell == buy:
            raise BadRequest(
                "sell and buy must be different currencies", service=SERVICE, code="same_currency"
            )
        market = await self.prices.price(sell, buy)
        try:
            terms = quote_terms(
                price=market.price,
                sell_amount=amount,
                spread=self.settings.swap_spread,
                fee_rate=self.settings.swap_fee_rate,
                sell_places=currencies[sell],
                buy_places=currencies[buy],
                max_amount=MAX_AMOUNT,
            )
        except UnquotableAmount as exc:
            raise BadRequest(str(exc), service=SERVICE, code=exc.code) from None
        now = self._clock()
        async with self.db.cursor() as cur:
            await cur.execute(
                q.INSERT_QUOTE,
                {"id": str(uuid.uuid4()), "user_id": str(user_id), "sell_currency": sell,
                 "buy_currency": buy, "sell_amount": amount, "buy_amount": terms.buy_amount,
                 "fee": terms.fee, "spread_amount": terms.spread_amount,
                 "price": market.price, "rate": terms.rate,
                 "price_as_of": market.as_of, "created_at": now,
                 "expires_at": now + timedelta(seconds=self.settings.quote_ttl_seconds)},
            )  # fmt: skip
            return _quote(await cur.fetchone())

    async def quote(self, user_id: uuid.UUID, quote_id: uuid.UUID) -> Quote:
        """The user's quote; :class:`NotFound` if absent or someone else's."""
        async with self.db.cursor() as cur:
            return await self._user_quote(cur, user_id, quote_id)

    async def execute_quote(
        self, user_id: uuid.UUID, quote_id: uuid.UUID, execution_key: str | None = None
    ) -> Execution:
        """Exchange at the quote's terms, once: a retry returns the first execution.

        An expired quote is :class:`Gone` and nothing moves; a refusal by the wallet
        (insufficient funds) leaves the quote open.

        The steps, in this order, each safe to repeat:

        1. claim: ``open -> executing`` in the swap schema, only before the deadline. A
           retry before the deadline carries a claimed execution on; after it, the
           execution is settled by what the wallet holds under its key (:meth:`_settle`):
           executed if the money moved, else expired with the key spent, so that no retry
           moves the money at an old price hours later.
        2. exchange in the wallet (its own database, its own transaction), under an
           idempotency key derived from the quote id: whatever the retries and concurrent
           calls, the ledger holds the exchange at most once, and a repeat answers the
           first transaction.
        3. mark ``executed`` with the ledger transaction.

        The wallet goes first because it is the truth: marking the quote executed first
        would claim a movement that may never happen. If step 3 fails the quote stays
        ``executing`` with the money moved: a retry completes it (step 2 replays), or the
        settlement does.
        No swap connection is held during step 2, so a slow wallet cannot exhaust the
        swap pool and stop quoting.
        """
        now = self._clock()
        async with self.db.cursor() as cur:
            await cur.execute(
                q.CLAIM_FOR_EXECUTION,
                {
                    "id": str(quote_id),
                    "user_id": str(user_id),
                    "key": execution_key,
                    "now": now,
                    "from": states_before(QuoteState.EXECUTING),
                },
            )
            row = await cur.fetchone()
            claimed = row is not None
            if claimed:
                quote = _quote(row)
            else:
                quote = await self._user_quote(cur, user_id, quote_id)
                if quote.state is QuoteState.OPEN:  # not claimed: past its deadline
                    await cur.execute(
                        q.EXPIRE,
                        {
                            "id": str(quote_id),
                            "now": now,
                            "from": UNCLAIMED,
                        },
                    )
                    row = await cur.fetchone()
                    quote = _quote(row) if row else await self._user_quote(cur, user_id, quote_id)
        if quote.state is QuoteState.EXECUTING and not claimed and now >= quote.expires_at:
            # An execution cut short (its wallet call never answered), retried after the
            # deadline: settled by what the wallet holds, never carried on at the old price.
            quote = await self._settle(quote)
        if quote.state is QuoteState.EXECUTED:
            return Execution(quote, replayed=True)
        if quote.state is not QuoteState.EXECUTING:
            raise Gone(
                f"quote {quote_id} expired at {quote.expires_at.isoformat()}",
                service=SERVICE,
                code="quote_expired",
            )
        # EXECUTING: claimed now, or by an execution that is running or was interrupted;
        # either way this one carries it on (the wallet's idempotency key makes that safe).
        try:
            posted = await self.wallet.exchange(
                user_id,
                sell=(quote.sell_currency, quote.sell_amount),
                buy=(quote.buy_currency, quote.buy_amount),
                fee=quote.fee,
                spread=quote.spread_amount,
                idempotency_key=quote.wallet_key,
                reference=quote.reference,
            )
        except AppError as exc:
            if exc.code == "idempotency_key_reused":
                # settled meanwhile as never executed (the key spent): nothing moved
                raise Gone(f"quote {quote_id} expired at {quote.expires_at.isoformat()}",
                           service=SERVICE, code="quote_expired") from None  # fmt: skip
            if exc.status < 500:
                # The wallet refused and rolled back: nothing moved, the quote is open again.
                async with self.db.cursor() as cur:
                    await cur.execute(
                        q.GIVE_BACK,
                        {"id": str(quote_id), "from": states_before(QuoteState.OPEN)},
                    )
            raise
        async with self.db.cursor() as cur:
            await self._mark_executed(cur, quote_id, posted.transaction_id)
            row = await cur.fetchone()
            if row is None:  # not executing nor open any more: a concurrent execution won
                row_quote = await self._user_quote(cur, user_id, quote_id)
                if row_quote.state is not QuoteState.EXECUTED:
                    raise Conflict(
                        f"quote {quote_id} is {row_quote.state.value}, cannot become executed "
                        f"though the wallet posted transaction {posted.transaction_id}",
                        service=SERVICE,
                        code="invalid_transition",
                    )
                return Execution(row_quote, replayed=posted.replayed)
        return Execution(_quote(row), replayed=posted.replayed)

    async def settle_stale_executions(self, before: datetime, limit: int = 100) -> list[uuid.UUID]:
        """Executions claimed and never finished, past a deadline before ``before``: each
        ends with one outcome, by what the wallet holds under the quote's key (executed
        with its transaction, or expired with nothing moved); return their ids."""
        async with self.db.cursor() as cur:
            await cur.execute(q.STALE_EXECUTIONS, {"before": before, "limit": limit})
            stale = [
                (uuid.UUID(str(qid)), uuid.UUID(str(uid))) for qid, uid in await cur.fetchall()
            ]
        settled = []
        for quote_id, user_id in stale:
            async with self.db.cursor() as cur:
                quote = await self._user_quote(cur, user_id, quote_id)
            if quote.state is QuoteState.EXECUTING:
                await self._settle(quote)
                settled.append(quote_id)
        return settled

    async def _settle(self, quote: Quote) -> Quote:
        """An execution whose wallet answer was lost, past its deadline: executed if the
        wallet posted it, else expired, and the key spent so that it never will."""
        posted = await self.wallet.void_key(quote.wallet_key, quote.reference)
        async with self.db.cursor() as cur:
            if posted is not None:
                await self._mark_executed(cur, quote.id, posted.transaction_id)
            else:
                await cur.execute(
                    q.SETTLE_EXPIRED,
                    {"id": str(quote.id), "now": self._clock(),
                     "from": states_before(QuoteState.EXPIRED)},
                )  # fmt: skip
            return await self._user_quote(cur, quote.user_id, quote.id)

    async def expire_quotes(self, now: datetime, limit: int = 500) -> list[uuid.UUID]:
        """Mark open quotes past their deadline at ``now`` expired; return their ids.

        Only ``open`` quotes: one claimed for execution in time may still complete. Safe to
        run concurrently with executions and with itself (several workers): each quote
        expires once. Readers already see such a quote as expired
        (:meth:`Quote.state_at`); this writes it down. At most ``limit`` a call.
        """
        async with self.db.cursor() as cur:
            await cur.execute(
                q.EXPIRE_DUE,
                {"now": now, "limit": limit, "from": UNCLAIMED},
            )
            return [uuid.UUID(str(row[0])) for row in await cur.fetchall()]

    async def _mark_executed(self, cur: Any, quote_id: uuid.UUID, transaction_id: int) -> None:
        """Executed with the wallet's transaction (the row, if it changed, to fetch)."""
        await cur.execute(
            q.MARK_EXECUTED,
            {"id": str(quote_id), "now": self._clock(), "transaction_id": transaction_id,
             "from": states_before(QuoteState.EXECUTED)},
        )  # fmt: skip

    async def _user_quote(self, cur: Any, user_id: uuid.UUID, quote_id: uuid.UUID) -> Quote:
        await cur.execute(q.USER_QUOTE, {"id": str(quote_id), "user_id": str(user_id)})
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no quote {quote_id}", service=SERVICE, code="quote_not_found")
        return _quote(row)


def _quote(row: Any) -> Quote:
    (id_, user_id, sell_currency, buy_currency, sell_amount, buy_amount, fee, spread_amount,
     price, rate, price_as_of, state, created_at, expires_at, executed_at,
     transaction_id) = row  # fmt: skip
    return Quote(
        id=uuid.UUID(str(id_)),
        user_id=uuid.UUID(str(user_id)),
        sell_currency=sell_currency,
        buy_currency=buy_currency,
        sell_amount=as_decimal(sell_amount),
        buy_amount=as_decimal(buy_amount),
        fee=as_decimal(fee),
        spread_amount=as_decimal(spread_amount),
        price=as_decimal(price),
        rate=as_decimal(rate),
        price_as_of=price_as_of.astimezone(UTC),
        state=QuoteState(state),
        created_at=created_at.astimezone(UTC),
        expires_at=expires_at.astimezone(UTC),
        executed_at=executed_at.astimezone(UTC) if executed_at is not None else None,
        transaction_id=transaction_id,
    )
