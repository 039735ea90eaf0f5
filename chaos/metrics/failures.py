"""What a group's failures said: their rate, the services and codes they named."""

from __future__ import annotations

import math

from isolation_harness.chaos.metrics.base import Measured, metric
from isolation_harness.chaos.metrics.window import GroupWindow


@metric("error_rate", "rate")
def error_rate(window: GroupWindow, argument: str | None) -> Measured:
    return len(window.failed) / len(window.samples)


@metric("foreign_failures", "count")
def foreign_failures(window: GroupWindow, argument: str | None) -> Measured:
    """Failures naming a service other than the group's own or a target of the window's
    faults."""
    allowed = window.services | window.targets
    return float(
        sum(1 for s in window.failed if s.error_service and s.error_service not in allowed)
    )


@metric("codes", "set")
def codes(window: GroupWindow, argument: str | None) -> Measured:
    return frozenset(s.error_code for s in window.failed if s.error_code)


@metric("naming", "count", takes_argument=True)
def naming(window: GroupWindow, argument: str | None) -> Measured:
    """``naming(p2p)``: failures whose error body names that service."""
    return float(sum(1 for s in window.failed if s.error_service == argument))


@metric("share_naming", "rate", takes_argument=True)
def share_naming(window: GroupWindow, argument: str | None) -> Measured:
    """``share_naming(p2p)``: the share of failures naming that service (undefined
    without a failure)."""
    if not window.failed:
        return math.nan
    return sum(1 for s in window.failed if s.error_service == argument) / len(window.failed)


@metric("code", "count", takes_argument=True)
def code(window: GroupWindow, argument: str | None) -> Measured:
    """``code(pool_timeout)``: failures with that error code."""
    return float(sum(1 for s in window.failed if s.error_code == argument))
