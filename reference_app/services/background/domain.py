"""Background domain: the feed's prices and their freshness, the jobs and their runs. No I/O."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from isolation_harness.reference_app.prices_client import MarketPrice


def pairs_of(currencies: Iterable[str]) -> list[tuple[str, str]]:
    """Every ordered pair of distinct currencies: what swap and express may ask a price of."""
    return sorted(itertools.permutations(sorted(set(currencies)), 2))


def age_of(as_of: datetime, now: datetime) -> float:
    """Seconds since the price was observed (0 for a price dated ahead of our clock, which
    is stale all the same: :meth:`MarketPrice.stale`)."""
    return max(0.0, (now - as_of).total_seconds())


@dataclass(frozen=True)
class FeedEntry:
    """What the feed knows of one pair: its latest price (if any) and its latest poll."""

    pair: str
    market: MarketPrice | None
    #: when the feed last received a price for the pair
    fetched_at: datetime | None
    #: when the feed last asked, and why that failed (None: it answered)
    polled_at: datetime | None
    error: str | None

    def age(self, now: datetime) -> float | None:
        return age_of(self.market.as_of, now) if self.market is not None else None

    def is_stale(self, now: datetime, max_age: float) -> bool:
        return self.market is None or self.market.stale(now, max_age) is not None


@dataclass(frozen=True)
class Poll:
    """One poll of the source: when, how many pairs answered, the first failure."""

    started_at: datetime
    finished_at: datetime
    priced: int
    failed: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.failed == 0


class JobName(StrEnum):
    EXPIRE_DEPOSITS = "expire_unpaid_deposits"
    EXPIRE_QUOTES = "expire_quotes"
    EXPIRE_EXPRESS_QUOTES = "expire_express_quotes"
    SETTLE_EXECUTIONS = "settle_interrupted_executions"
    EXPIRE_TRADES = "expire_trades"
    DISPUTE_TRADES = "dispute_unreleased_trades"
    RESUME_TRADES = "resume_interrupted_trades"
    PRUNE_PRICE_HISTORY = "prune_price_history"


class JobOutcome(StrEnum):
    OK = "ok"
    FAILED = "failed"


@dataclass(frozen=True)
class JobRun:
    """One tick of a job: how many rows it changed, or why it failed."""

    job: JobName
    started_at: datetime
    finished_at: datetime
    outcome: JobOutcome
    count: int = 0
    error: str | None = None


@dataclass
class JobStatus:
    """A job's record in this worker since it started."""

    job: JobName
    interval: float
    runs: int = 0
    failures: int = 0
    #: rows changed over all runs
    total: int = 0
    last: JobRun | None = None
    last_ok: JobRun | None = None

    def record(self, run: JobRun) -> None:
        self.runs += 1
        self.last = run
        if run.outcome is JobOutcome.OK:
            self.total += run.count
            self.last_ok = run
        else:
            self.failures += 1


@dataclass(frozen=True)
class PriceRecord:
    """One price in the feed's history."""

    pair: str
    price: Decimal
    as_of: datetime
    fetched_at: datetime
