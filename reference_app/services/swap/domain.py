"""Swap domain: quote states and their transitions, the quote formula. No I/O.

The quote formula, every rounding against the user (so the platform never pays for a
rounding):

    price       what one unit sold is worth in the currency bought (from the price source)
    rate        = price * (1 - spread), rounded down to RATE_PLACES decimal places
    fee         = amount sold * fee rate, rounded up to the sold currency's precision
    buy amount  = (amount sold - fee) * rate, rounded down to the bought currency's precision
    spread amount = (amount sold - fee) * price, rounded down likewise, less the buy amount:
                  what the spread earns the platform, booked to its revenue like the fee

The fee is taken from what is sold: the user gives ``amount``, of which ``fee`` goes to the
platform and the rest to the swap desk, which pays ``buy amount`` for it at ``rate``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_UP, Decimal, localcontext
from enum import StrEnum
from typing import ClassVar

from isolation_harness.reference_app.deadlines import Expiring
from isolation_harness.reference_app.money import RATE_PLACES, UnquotableAmount, unit


class QuoteState(StrEnum):
    OPEN = "open"
    #: claimed by an execution before its deadline; the wallet's answer decides what follows
    EXECUTING = "executing"
    EXECUTED = "executed"
    EXPIRED = "expired"


QUOTE_TRANSITIONS: dict[QuoteState, frozenset[QuoteState]] = {
    QuoteState.OPEN: frozenset({QuoteState.EXECUTING, QuoteState.EXPIRED, QuoteState.EXECUTED}),
    # back to open when the wallet refused the exchange (insufficient funds): nothing moved;
    # expired when an execution cut short is settled after the deadline and the wallet
    # never posted it (the key is spent: it never will)
    QuoteState.EXECUTING: frozenset({QuoteState.EXECUTED, QuoteState.OPEN, QuoteState.EXPIRED}),
    QuoteState.EXECUTED: frozenset(),
    QuoteState.EXPIRED: frozenset(),
}
"""Which state may follow which.

``open -> executed`` directly happens only when the wallet posted the exchange for one
execution while a concurrent one, refused a moment earlier, gave the quote back: the
ledger is the truth, so the quote is executed.
"""


def states_before(target: QuoteState) -> tuple[str, ...]:
    """The states from which a quote may become ``target`` (for a conditional UPDATE)."""
    return tuple(sorted(s.value for s, after in QUOTE_TRANSITIONS.items() if target in after))


@dataclass(frozen=True)
class QuoteTerms:
    """The computed part of a quote."""

    rate: Decimal
    fee: Decimal
    buy_amount: Decimal
    #: what the spread earns, in the bought currency (never negative: rate <= price)
    spread_amount: Decimal


def quote_terms(
    *,
    price: Decimal,
    sell_amount: Decimal,
    spread: Decimal,
    fee_rate: Decimal,
    sell_places: int,
    buy_places: int,
    max_amount: Decimal,
) -> QuoteTerms:
    """Rate, fee and amount bought for selling ``sell_amount`` at market ``price``."""
    with localcontext() as context:
        # Wide enough that nothing is rounded before the quantizes: an amount of 10**15
        # with 18 places times a rate of 20 integer digits and 18 places fits in 80 digits.
        context.prec = 80
        rate = (price * (1 - spread)).quantize(unit(RATE_PLACES), ROUND_DOWN)
        fee = (sell_amount * fee_rate).quantize(unit(sell_places), ROUND_UP)
        buy_amount = ((sell_amount - fee) * rate).quantize(unit(buy_places), ROUND_DOWN)
        at_price = ((sell_amount - fee) * price).quantize(unit(buy_places), ROUND_DOWN)
    if buy_amount <= 0:
        raise UnquotableAmount(
            f"amount: {sell_amount} buys nothing after the fee at rate {rate}",
            code="amount_too_small",
        )
    if buy_amount > max_amount:
        raise UnquotableAmount(
            f"amount: would buy {buy_amount}, more than {max_amount:f}",
            code="amount_too_large",
        )
    spread_amount = at_price - buy_amount
    return QuoteTerms(rate=rate, fee=fee, buy_amount=buy_amount, spread_amount=spread_amount)


@dataclass(frozen=True)
class Quote(Expiring[QuoteState]):
    """A price promised to one user until ``expires_at``."""

    STILL_OPEN: ClassVar[QuoteState] = QuoteState.OPEN
    EXPIRED: ClassVar[QuoteState] = QuoteState.EXPIRED

    id: uuid.UUID
    user_id: uuid.UUID
    sell_currency: str
    buy_currency: str
    sell_amount: Decimal
    buy_amount: Decimal
    fee: Decimal
    #: booked to the platform's revenue at execution (0 for quotes made before it was)
    spread_amount: Decimal
    price: Decimal
    rate: Decimal
    price_as_of: datetime
    state: QuoteState
    created_at: datetime
    expires_at: datetime
    executed_at: datetime | None
    transaction_id: int | None

    @property
    def pair(self) -> str:
        return f"{self.sell_currency}-{self.buy_currency}"

    @property
    def reference(self) -> str:
        """The ledger reference of the quote's exchange."""
        return f"swap:quote:{self.id}"

    @property
    def wallet_key(self) -> str:
        """The wallet idempotency key: one per quote, so no retry can execute it twice."""
        return f"swap:quote:{self.id}"


@dataclass(frozen=True)
class Execution:
    """The outcome of executing a quote; ``replayed`` when it had been executed already."""

    quote: Quote
    replayed: bool
