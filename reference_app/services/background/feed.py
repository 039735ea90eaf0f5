"""The price feed: polls the price source on a schedule and keeps the latest prices in memory.

Swap and express price from the feed, not from the source: reading a price is a dictionary
look-up and a clock reading, with no database and no network. The price source being down,
slow or cut off (the ``prices`` link) therefore costs them nothing until the prices they hold
grow too old; then they refuse to price, with a 503 that names the cause:

- ``stale_price``: the pair's latest price was observed (by the source's ``as_of``) more
  than ``max_age`` seconds ago. That happens when the polls fail for ``max_age`` seconds,
  and at once when the source itself answers with old prices. The message gives the age,
  and the last poll's failure when there is one.
- ``price_unavailable``: the feed has no price for the pair at all (the source has not
  answered since the app started, or does not price the pair); the message gives the last
  poll's failure.

**Who is named.** The feed is one object shared by every worker's swap and express, so its
errors would not know whom to name. Each caller gets its own view, :meth:`PriceFeed.for_service`
(a :class:`~reference_app.prices.Prices`), whose errors are
:class:`~reference_app.errors.DependencyUnavailable` with ``service`` = that caller: swap's
quote answers "swap: stale_price", express's "express: stale_price".

**History.** Each successful poll's prices are handed to a recorder (the background service
stores them, with their timestamps, in its own schema) in a task of their own: a slow or
unavailable background database delays no poll and makes no price stale. While one
recording is under way the next polls' prices are not recorded (the history thins out,
the feed goes on).

Each worker process runs its own feed: the prices in memory are per process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from isolation_harness.reference_app.clock import utc_now
from isolation_harness.reference_app.errors import DependencyUnavailable
from isolation_harness.reference_app.prices_client import MarketPrice, PriceSource
from isolation_harness.reference_app.services.background.domain import FeedEntry, Poll
from isolation_harness.reference_app.services.background.jobs import cancel_and_wait

log = logging.getLogger("reference_app.background")

#: stores one poll's prices, received at the given time
Recorder = Callable[[Sequence[MarketPrice], datetime], Awaitable[object]]


class PriceFeed:
    """The latest price of each pair, refreshed from ``source`` every ``interval`` seconds.

    ``source`` should accept any age (``max_age`` of infinity): the feed judges the age when
    a price is read, not when it is fetched, so a price that was fresh when fetched turns
    stale in memory once ``max_age`` has passed without a newer one.
    """

    def __init__(
        self,
        source: PriceSource,
        pairs: Sequence[tuple[str, str]],
        *,
        interval: float,
        max_age: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.source = source
        self.interval = interval
        self.max_age = max_age
        self._clock = clock
        self._pairs = list(pairs)
        self._entries = {
            f"{base}-{quote}": FeedEntry(f"{base}-{quote}", None, None, None, None)
            for base, quote in self._pairs
        }
        self.last_poll: Poll | None = None
        self._polling: asyncio.Task[None] | None = None
        self._recording: asyncio.Task[None] | None = None
        self._failing = False
        self._record_failing = False

    # -- reading: memory only ---------------------------------------------------------------

    def for_service(self, service: str) -> FeedPrices:
        """The feed as ``service``'s source of prices: its errors name ``service``."""
        return FeedPrices(self, service)

    def price_for(self, service: str, base: str, quote: str) -> MarketPrice:
        """The latest price of ``base`` in ``quote`` if fresh; else a 503 naming ``service``."""
        pair = f"{base}-{quote}"
        entry = self._entries.get(pair)
        now = self._clock()
        if entry is None or entry.market is None:
            raise DependencyUnavailable(
                f"price feed: no price for {pair} ({self._why_none(entry, now)})",
                service=service,
                code="price_unavailable",
            )
        stale = entry.market.stale(now, self.max_age)
        if stale is not None:
            cause = (
                f"the last poll failed: {entry.error}"
                if entry.error is not None
                else "the source itself dates it so"
            )
            raise DependencyUnavailable(
                f"price feed: {stale}; {cause}", service=service, code="stale_price"
            )
        return entry.market

    def entries(self) -> list[FeedEntry]:
        """What the feed knows of every pair it follows, sorted by pair."""
        return [self._entries[pair] for pair in sorted(self._entries)]

    def _why_none(self, entry: FeedEntry | None, now: datetime) -> str:
        if entry is None:
            return "the feed does not follow this pair"
        if entry.polled_at is None:
            return "the price source has not been polled yet"
        ago = (now - entry.polled_at).total_seconds()
        return (
            f"the price source has not priced it since the app started; "
            f"last poll {ago:.1f} s ago: {entry.error}"
        )

    # -- polling ----------------------------------------------------------------------------

    async def refresh(self) -> Poll:
        """Poll the source once for every pair (concurrently); keep what it answered."""
        poll, _ = await self._poll()
        return poll

    async def _poll(self) -> tuple[Poll, list[MarketPrice]]:
        started = self._clock()
        answers = await asyncio.gather(*(self._ask(base, quote) for base, quote in self._pairs))
        finished = self._clock()
        errors = [error for _, error in answers if error is not None]
        for (base, quote), (market, error) in zip(self._pairs, answers, strict=True):
            pair = f"{base}-{quote}"
            old = self._entries[pair]
            if market is not None:
                self._entries[pair] = FeedEntry(pair, market, finished, finished, None)
            else:
                self._entries[pair] = FeedEntry(pair, old.market, old.fetched_at, finished, error)
        poll = Poll(
            started_at=started,
            finished_at=finished,
            priced=len(answers) - len(errors),
            failed=len(errors),
            error=errors[0] if errors else None,
        )
        self.last_poll = poll
        self._log_change(poll)
        return poll, [market for market, _ in answers if market is not None]

    async def _ask(self, base: str, quote: str) -> tuple[MarketPrice | None, str | None]:
        try:
            return await self.source.price(base, quote), None
        except DependencyUnavailable as exc:
            return None, exc.message

    def _log_change(self, poll: Poll) -> None:
        """Log when polling starts or stops failing, not every failed poll."""
        if not poll.ok and not self._failing:
            log.warning(
                "price feed: %d of %d pairs not priced: %s",
                poll.failed, poll.failed + poll.priced, poll.error,
            )  # fmt: skip
        elif poll.ok and self._failing:
            log.warning("price feed: every pair priced again")
        self._failing = not poll.ok

    async def tick(self, record: Recorder | None = None) -> Poll:
        """One poll, then its prices handed to ``record`` in the background (if idle)."""
        poll, prices = await self._poll()
        if record is not None and prices:
            self._record(record, prices, poll.finished_at)
        return poll

    async def run(self, record: Recorder | None = None, *, start_after: float = 0.0) -> None:
        """Poll every ``interval`` seconds until cancelled; a failing poll never ends it."""
        await asyncio.sleep(start_after)
        while True:
            started = time.monotonic()
            try:
                await self.tick(record)
            except Exception:  # a bug, not the source: PriceSource maps its failures
                log.exception("price feed: poll failed")
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    def _record(self, record: Recorder, prices: list[MarketPrice], fetched_at: datetime) -> None:
        if self._recording is not None and not self._recording.done():
            return  # the previous poll's prices are still being written: skip these
        self._recording = asyncio.create_task(
            self._write(record, prices, fetched_at), name="price-history"
        )

    async def _write(
        self, record: Recorder, prices: list[MarketPrice], fetched_at: datetime
    ) -> None:
        try:
            await record(prices, fetched_at)
        except Exception as exc:
            if not self._record_failing:
                log.warning("price feed: price history not recorded: %s", exc)
            self._record_failing = True
        else:
            if self._record_failing:
                log.warning("price feed: price history recorded again")
            self._record_failing = False

    def start(self, record: Recorder | None = None) -> None:
        """Poll in a task of its own every ``interval`` seconds, the first time one interval
        from now (the app's startup made the first poll)."""
        self._polling = asyncio.create_task(
            self.run(record, start_after=self.interval), name="price-feed"
        )

    async def stop(self) -> None:
        """Stop polling, and cancel a recording under way (the app is stopping)."""
        await cancel_and_wait(t for t in (self._polling, self._recording) if t is not None)
        self._polling = self._recording = None


class FeedPrices:
    """The feed as one service's :class:`~reference_app.prices.Prices`."""

    def __init__(self, feed: PriceFeed, service: str) -> None:
        self.feed = feed
        self.service = service

    async def price(self, base: str, quote: str) -> MarketPrice:
        return self.feed.price_for(self.service, base, quote)
