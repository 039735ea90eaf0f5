"""Things that expire at a deadline (a swap quote, an express quote): when the deadline has
come, and how such a thing reads before anything has written that it expired."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

S = TypeVar("S")


class Expiring(Generic[S]):
    """For a record with a ``state`` and an ``expires_at``: the state it reads as at a moment.
    The record names its own open and expired states (``STILL_OPEN``, ``EXPIRED``)."""

    STILL_OPEN: ClassVar[Any]
    EXPIRED: ClassVar[Any]
    state: S
    expires_at: datetime

    def is_past_deadline(self, now: datetime) -> bool:
        """Whether the deadline has come at ``now`` (at the deadline itself it has)."""
        return now >= self.expires_at

    def state_at(self, now: datetime) -> S:
        """The state as a reader should see it: one still open past its deadline is
        expired, even before anything has written so."""
        if self.state == self.STILL_OPEN and self.is_past_deadline(now):
            return self.EXPIRED  # type: ignore[no-any-return]
        return self.state
