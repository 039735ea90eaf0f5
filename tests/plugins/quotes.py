"""What tests of quotes (swap, express) share: waiting out a deadline, and rounding a fraction
to a number of places, for the quote formulas computed independently of the app."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from fractions import Fraction
from typing import Protocol


class HasDeadline(Protocol):
    @property
    def expires_at(self) -> datetime: ...


async def until_expired(quote: HasDeadline) -> None:
    """Wait by the clock until the quote's deadline has passed."""
    async with asyncio.timeout(5):
        while datetime.now(UTC) < quote.expires_at:
            await asyncio.sleep(0.01)


def places(value: Fraction, digits: int, *, up: bool = False) -> Fraction:
    """``value`` cut (or, ``up``, raised) to ``digits`` decimal places, exactly."""
    scaled = value * 10**digits
    return Fraction(math.ceil(scaled) if up else math.floor(scaled), 10**digits)
