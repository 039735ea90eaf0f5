"""Admin dashboard domain: the reporting period, revenue attribution, the figures. No I/O.

**Revenue** is what the platform earned: the credits (positive entries) to the platform's
revenue account (``platform:revenue``, one system account per currency) in the period.
Each credit belongs to a ledger transaction, and the transaction says which service earned
it. Services name their money movements with a reference ``<service>:<thing>:<id>``, so a
fee is attributed by the reference's first part, and by the transaction's kind when the
reference names no earning service:

    reference                   kind              service  what
    p2p:trade:<trade id>        escrow_release    p2p      the fee of a released trade
    swap:quote:<quote id>       swap              swap     the fee of an executed swap
    express:<anything>          express[_…]       express  fees of express buys
    anything else               anything else     other    (reported, never dropped)

**Counts** are of the rows created in the period, by their state now; a swap quote still
recorded ``open`` past its deadline counts as ``expired``, as its reader would see it.
**Liquidity** is the express liquidity account's (``platform:liquidity``) balance per
currency, now; 0 in every configured currency it holds none of.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from isolation_harness.reference_app.metrics import PoolStats
from isolation_harness.reference_app.services.deposits.domain import DepositStatus
from isolation_harness.reference_app.services.p2p.domain import TradeState
from isolation_harness.reference_app.services.swap.domain import QuoteState
from isolation_harness.reference_app.services.wallet.domain import (
    PLATFORM_LIQUIDITY,
    PLATFORM_REVENUE,
)

#: the services that earn fees, in the order the dashboard lists them
EARNING_SERVICES: tuple[str, ...] = ("p2p", "swap", "express")
#: where a fee whose transaction names no earning service is reported
UNATTRIBUTED = "other"
#: the fallback: a transaction's kind -> the service that posts it
KIND_SERVICE: Mapping[str, str] = {"escrow_release": "p2p", "swap": "swap"}

DEFAULT_PERIOD = timedelta(hours=24)
#: the longest period one dashboard may cover (it scans the ledger of the period)
MAX_PERIOD = timedelta(days=366)

#: every state each counted table may hold, so that a state with no rows shows as 0
COUNTED_STATES: Mapping[str, tuple[str, ...]] = {
    "deposits": tuple(s.value for s in DepositStatus),
    "p2p_trades": tuple(s.value for s in TradeState),
    "swap_quotes": tuple(s.value for s in QuoteState),
}


class BadPeriod(ValueError):
    """A reporting period that cannot be reported on; the message says why."""


@dataclass(frozen=True)
class Period:
    """From ``start`` (included) to ``end`` (excluded), both timezone-aware."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise BadPeriod("times must be timezone-aware")
        if self.start >= self.end:
            raise BadPeriod("from must be before to")
        if self.end - self.start > MAX_PERIOD:
            raise BadPeriod(f"the period may cover at most {MAX_PERIOD.days} days")

    @classmethod
    def ending(cls, end: datetime, length: timedelta = DEFAULT_PERIOD) -> Period:
        """The ``length`` before ``end``."""
        try:
            return cls(end - length, end)
        except OverflowError:
            raise BadPeriod("to is too early: the period would start before year 1") from None


def attribute(kind: str, reference: str | None) -> str:
    """The service that earned a fee posted by a transaction of ``kind`` and ``reference``
    (the whole reference, or only its first part)."""
    prefix = (reference or "").partition(":")[0]
    if prefix in EARNING_SERVICES:
        return prefix
    if kind in KIND_SERVICE:
        return KIND_SERVICE[kind]
    head = re.split(r"[_:.]", kind, maxsplit=1)[0]
    return head if head in EARNING_SERVICES else UNATTRIBUTED


@dataclass(frozen=True)
class FeeCredit:
    """Fees credited to the revenue account by transactions of one kind and reference prefix."""

    kind: str
    reference_prefix: str | None
    currency: str
    amount: Decimal
    transactions: int


@dataclass(frozen=True)
class Earnings:
    """What one service earned in one currency."""

    fees: Decimal = Decimal(0)
    transactions: int = 0

    def __add__(self, other: Earnings) -> Earnings:
        return Earnings(self.fees + other.fees, self.transactions + other.transactions)


@dataclass(frozen=True)
class Revenue:
    """Fees per service and currency, and their totals per currency."""

    by_service: Mapping[str, Mapping[str, Earnings]]
    totals: Mapping[str, Decimal]

    @classmethod
    def of(cls, credits: Iterable[FeeCredit]) -> Revenue:
        by_service: dict[str, dict[str, Earnings]] = {s: {} for s in EARNING_SERVICES}
        totals: dict[str, Decimal] = {}
        for credit in credits:
            service = attribute(credit.kind, credit.reference_prefix)
            earned = by_service.setdefault(service, {})
            earned[credit.currency] = earned.get(credit.currency, Earnings()) + Earnings(
                credit.amount, credit.transactions
            )
            totals[credit.currency] = totals.get(credit.currency, Decimal(0)) + credit.amount
        return cls(
            {s: dict(sorted(c.items())) for s, c in by_service.items()},
            dict(sorted(totals.items())),
        )


def state_counts(table: str, found: Mapping[str, int]) -> dict[str, int]:
    """Counts for every state of ``table`` (0 where none), and any unknown state found."""
    counts = dict.fromkeys(COUNTED_STATES[table], 0)
    counts.update(found)
    return counts


@dataclass(frozen=True)
class Dashboard:
    """The admin's figures for one period, read in one database snapshot."""

    period: Period
    as_of: datetime
    revenue: Revenue
    liquidity: Mapping[str, Decimal]
    counts: Mapping[str, Mapping[str, int]]
    pools: Mapping[str, PoolStats]
    revenue_account: str = PLATFORM_REVENUE
    liquidity_account: str = PLATFORM_LIQUIDITY
