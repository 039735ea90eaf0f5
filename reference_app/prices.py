"""What pricing needs: the current price of a pair (a protocol the feed and the source meet)."""

from __future__ import annotations

from typing import Protocol

from isolation_harness.reference_app.prices_client import MarketPrice


class Prices(Protocol):
    """Where swap and express get prices from."""

    async def price(self, base: str, quote: str) -> MarketPrice: ...
