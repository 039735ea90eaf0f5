"""Express buy domain: quotes and orders, their states and transitions, the quote formula.
No I/O.

The user names what to buy and how much; the platform sells it out of its liquidity at the
market price plus a markup. Every rounding is against the user (so the platform never pays
for a rounding):

    price       what one unit bought is worth in the currency paid (from the price source)
    rate        = price * (1 + markup), rounded up to RATE_PLACES decimal places
    pay amount  = amount bought * rate, rounded up to the paid currency's precision
    cost        = amount bought * price, rounded up to the paid currency's precision
    fee         = pay amount - cost (the markup, never negative)

The user pays ``pay amount``: ``cost`` goes into the platform's liquidity of the paid currency
(what it gave, at market value) and ``fee`` to the platform's revenue.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_UP, Decimal, localcontext
from enum import StrEnum
from typing import ClassVar

from isolation_harness.reference_app.deadlines import Expiring
from isolation_harness.reference_app.money import RATE_PLACES, UnquotableAmount, unit


class QuoteState(StrEnum):
    OPEN = "open"
    #: an order was placed on it (see the order's state for what became of it)
    ORDERED = "ordered"
    EXPIRED = "expired"


QUOTE_TRANSITIONS: dict[QuoteState, frozenset[QuoteState]] = {
    QuoteState.OPEN: frozenset({QuoteState.ORDERED, QuoteState.EXPIRED}),
    QuoteState.ORDERED: frozenset(),
    QuoteState.EXPIRED: frozenset(),
}
"""Which quote state may follow which: a quote gets at most one order, placed in time."""


class OrderState(StrEnum):
    #: placed: the wallet's answer decides what follows
    PENDING = "pending"
    FILLED = "filled"
    #: the wallet refused (insufficient liquidity or funds): nothing moved
    REJECTED = "rejected"


ORDER_TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    OrderState.PENDING: frozenset({OrderState.FILLED, OrderState.REJECTED}),
    OrderState.FILLED: frozenset(),
    # pending again: retried before the quote's deadline (liquidity or funds may have come);
    # filled: a concurrent attempt had the wallet post it while this one recorded a refusal,
    # and the ledger is the truth
    OrderState.REJECTED: frozenset({OrderState.PENDING, OrderState.FILLED}),
}
"""Which order state may follow which."""


def order_states_before(target: OrderState) -> tuple[str, ...]:
    """The states from which an order may become ``target`` (for a conditional UPDATE)."""
    return tuple(sorted(s.value for s, after in ORDER_TRANSITIONS.items() if target in after))


@dataclass(frozen=True)
class QuoteTerms:
    """The computed part of a quote."""

    rate: Decimal
    pay_amount: Decimal
    cost: Decimal
    fee: Decimal


def quote_terms(
    *,
    price: Decimal,
    buy_amount: Decimal,
    markup: Decimal,
    pay_places: int,
    max_amount: Decimal,
) -> QuoteTerms:
    """Rate, amount paid, cost and fee of buying ``buy_amount`` at market ``price``."""
    with localcontext() as context:
        # Wide enough that nothing is rounded before the quantizes (see the swap formula).
        context.prec = 80
        smallest = unit(pay_places)
        rate = (price * (1 + markup)).quantize(unit(RATE_PLACES), ROUND_UP)
        exact_cost = buy_amount * price
        pay_amount = (buy_amount * rate).quantize(smallest, ROUND_UP)
        cost = exact_cost.quantize(smallest, ROUND_UP)
    if exact_cost < smallest:
        # Rounded up, it would cost the user more than it is worth, maybe many times.
        raise UnquotableAmount(
            f"amount: {buy_amount} is worth less than {smallest} at price {price}",
            code="amount_too_small",
        )
    if pay_amount > max_amount:
        raise UnquotableAmount(
            f"amount: would cost {pay_amount}, more than {max_amount:f}",
            code="amount_too_large",
        )
    return QuoteTerms(rate=rate, pay_amount=pay_amount, cost=cost, fee=pay_amount - cost)


@dataclass(frozen=True)
class Quote(Expiring[QuoteState]):
    """A price for buying ``buy_amount`` of ``buy_currency``, promised until ``expires_at``."""

    STILL_OPEN: ClassVar[QuoteState] = QuoteState.OPEN
    EXPIRED: ClassVar[QuoteState] = QuoteState.EXPIRED

    id: uuid.UUID
    user_id: uuid.UUID
    buy_currency: str
    pay_currency: str
    buy_amount: Decimal
    pay_amount: Decimal
    cost: Decimal
    fee: Decimal
    price: Decimal
    markup: Decimal
    rate: Decimal
    price_as_of: datetime
    state: QuoteState
    created_at: datetime
    expires_at: datetime

    @property
    def pair(self) -> str:
        """The market priced: ``BUY-PAY``."""
        return f"{self.buy_currency}-{self.pay_currency}"


@dataclass(frozen=True)
class Order:
    """An order on one quote, at the quote's terms; at most one per quote."""

    id: uuid.UUID
    quote: Quote
    state: OrderState
    #: why the wallet refused it (an error code), while rejected
    reason: str | None
    created_at: datetime
    filled_at: datetime | None
    transaction_id: int | None

    @property
    def reference(self) -> str:
        """The ledger reference of the order's movement."""
        return f"express:order:{self.id}"

    @property
    def wallet_key(self) -> str:
        """The wallet idempotency key: one per order, and an order per quote, so no retry
        nor concurrent attempt can move the money of a quote twice."""
        return f"express:order:{self.id}"


@dataclass(frozen=True)
class Placement:
    """The outcome of placing an order; ``replayed`` when it had been filled already."""

    order: Order
    replayed: bool
