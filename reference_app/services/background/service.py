"""Background use cases: the scheduled expiries (through the services that own the rows) and
the price history (in the background's own schema).

Every use case runs inside the background's error boundary: its time limit bounds a job's
tick, and the fault API can break the background without touching the services it calls.
An expiry changes another service's rows only through that service's own use case, under
that service's boundary, so a failure names the service whose database failed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from isolation_harness.reference_app.boundary import Boundary, BoundedService
from isolation_harness.reference_app.db import ServiceDatabase
from isolation_harness.reference_app.prices_client import MarketPrice
from isolation_harness.reference_app.services.background import queries as q
from isolation_harness.reference_app.services.background.domain import PriceRecord
from isolation_harness.reference_app.services.deposits.service import DepositsService
from isolation_harness.reference_app.services.express.service import ExpressService
from isolation_harness.reference_app.services.p2p.service import P2PService
from isolation_harness.reference_app.services.swap.service import SwapService
from isolation_harness.reference_app.settings import AppSettings

SERVICE = "background"
#: rows one tick of a job changes at most; the next tick goes on with the rest
BATCH = 500
#: trades one tick expires at most (each is a few round trips and a wallet movement)
TRADE_BATCH = 100


class BackgroundService(BoundedService):
    """The jobs' use cases and the price history."""

    def __init__(
        self,
        db: ServiceDatabase,
        boundary: Boundary,
        deposits: DepositsService,
        swap: SwapService,
        express: ExpressService,
        p2p: P2PService,
        settings: AppSettings,
    ) -> None:
        self.db = db
        self.boundary = boundary
        self.deposits = deposits
        self.swap = swap
        self.express = express
        self.p2p = p2p
        self.settings = settings

    # -- the jobs' use cases: each returns what it changed --------------------------------

    async def expire_unpaid_deposits(self, now: datetime) -> list[uuid.UUID]:
        """Deposits still waiting ``deposit_expiry_seconds`` after creation: expired."""
        older_than = timedelta(seconds=self.settings.deposit_expiry_seconds)
        return await self.deposits.expire_unpaid(now, older_than, limit=BATCH)

    async def expire_quotes(self, now: datetime) -> list[uuid.UUID]:
        """Open swap quotes past their deadline: expired."""
        return await self.swap.expire_quotes(now, limit=BATCH)

    async def expire_express_quotes(self, now: datetime) -> int:
        """Open express quotes past their deadline: expired (express judges the deadline by
        its own clock, not ``now``)."""
        return await self.express.expire_quotes()

    async def settle_interrupted_executions(self, now: datetime) -> list[uuid.UUID]:
        """Swap executions and express orders whose wallet answer was lost, their deadline
        two service time limits past (no call on them can still be under way): each
        executed or filled if the wallet posted it, else expired or rejected for good."""
        before = now - timedelta(seconds=2 * self.settings.service_timeout)
        swaps = await self.swap.settle_stale_executions(before, limit=TRADE_BATCH)
        return swaps + await self.express.settle_stale_orders(before, limit=TRADE_BATCH)

    async def expire_trades(self, now: datetime) -> list[uuid.UUID]:
        """Unpaid P2P trades past their deadline: expired, the escrow back to the seller."""
        return await self.p2p.expire_due_trades(now, limit=TRADE_BATCH)

    async def dispute_unreleased_trades(self, now: datetime) -> list[uuid.UUID]:
        """Paid P2P trades not released for ``trade_release_seconds``: disputed."""
        return await self.p2p.dispute_unreleased_trades(now, limit=TRADE_BATCH)

    async def resume_interrupted_trades(self, now: datetime) -> list[uuid.UUID]:
        """P2P transitions begun at least two service time limits ago and never finished
        (their request cut short): finished."""
        before = now - timedelta(seconds=2 * self.settings.service_timeout)
        return await self.p2p.resume_interrupted_trades(before, limit=TRADE_BATCH)

    async def prune_price_history(self, now: datetime) -> int:
        """Delete history older than ``price_history_seconds``; return how many rows."""
        before = now - timedelta(seconds=self.settings.price_history_seconds)
        async with self.db.cursor() as cur:
            await cur.execute(q.PRUNE_PRICE_HISTORY, {"before": before, "limit": BATCH * 10})
            return int(cur.rowcount)

    # -- the price history ----------------------------------------------------------------

    async def record_prices(self, prices: Sequence[MarketPrice], fetched_at: datetime) -> int:
        """Append one poll's prices to the history (one statement); return how many."""
        if not prices:
            return 0
        async with self.db.cursor() as cur:
            await cur.execute(
                q.RECORD_PRICES,
                {
                    "pairs": [p.pair for p in prices],
                    "prices": [p.price for p in prices],
                    "as_of": [p.as_of for p in prices],
                    "fetched_at": fetched_at,
                },
            )
            return int(cur.rowcount)

    async def price_history(self, pair: str, since: datetime, limit: int) -> list[PriceRecord]:
        """The pair's recorded prices observed since ``since``, newest first."""
        async with self.db.cursor() as cur:
            await cur.execute(q.PRICE_HISTORY, {"pair": pair, "since": since, "limit": limit})
            return [_record(row) for row in await cur.fetchall()]


def _record(row: Any) -> PriceRecord:
    pair, price, as_of, fetched_at = row
    return PriceRecord(
        pair=pair,
        price=price if isinstance(price, Decimal) else Decimal(price),
        as_of=as_of,
        fetched_at=fetched_at,
    )
