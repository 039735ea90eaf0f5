"""The time services read: the aware UTC now, replaceable in tests (``clock=`` arguments)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
