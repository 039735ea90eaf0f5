"""Admin dashboard use cases: read-only, through the admin's own pool and nothing else.

The admin's role may read the other services' schemas and write none (see
``reference_app/migrate.py``); its pool goes through its own link (``pg_admin``), so a slow
admin database slows the dashboard and no one else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from isolation_harness.reference_app.boundary import Boundary, BoundedService
from isolation_harness.reference_app.db import ServiceDatabase
from isolation_harness.reference_app.metrics import PoolStats
from isolation_harness.reference_app.services.admin import queries as q
from isolation_harness.reference_app.services.admin.domain import (
    COUNTED_STATES,
    Dashboard,
    FeeCredit,
    Period,
    Revenue,
    state_counts,
)
from isolation_harness.reference_app.services.wallet.domain import (
    PLATFORM_LIQUIDITY,
    PLATFORM_REVENUE,
)
from isolation_harness.reference_app.settings import AppSettings

SERVICE = "admin"


class AdminService(BoundedService):
    """Revenue and fees, liquidity, counts by state and live pool figures, for the admin."""

    def __init__(
        self,
        db: ServiceDatabase,
        boundary: Boundary,
        pool_stats: Callable[[], Mapping[str, PoolStats]],
        settings: AppSettings,
    ) -> None:
        self.db = db
        self.boundary = boundary
        self.pool_stats = pool_stats
        self.settings = settings

    async def dashboard(self, period: Period) -> Dashboard:
        """The figures of ``period``, read in one statement (one snapshot, one round trip)."""
        async with self.db.cursor() as cur:
            await cur.execute(
                q.DASHBOARD,
                {"start": period.start, "end": period.end,
                 "revenue_account": PLATFORM_REVENUE, "liquidity_account": PLATFORM_LIQUIDITY},
            )  # fmt: skip
            rows = await cur.fetchall()
        return self._assemble(period, rows)

    def _assemble(self, period: Period, rows: list[tuple[Any, ...]]) -> Dashboard:
        credits: list[FeeCredit] = []
        liquidity = dict.fromkeys(sorted(self.settings.currencies), Decimal(0))
        found: dict[str, dict[str, int]] = {table: {} for table in COUNTED_STATES}
        for section, label, detail, currency, amount, number in rows:
            if section == "revenue":
                credits.append(FeeCredit(label, detail, currency, Decimal(amount), int(number)))
            elif section == "liquidity":
                liquidity[currency] = Decimal(amount)
            else:
                found[section][label] = int(number)
        return Dashboard(
            period=period,
            as_of=datetime.now(UTC),
            revenue=Revenue.of(credits),
            liquidity=liquidity,
            counts={table: state_counts(table, states) for table, states in found.items()},
            # Read last, so that they are the pools' figures as the answer leaves.
            pools=dict(self.pool_stats()),
        )
