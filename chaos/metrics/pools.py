"""The pools of a group's services, from the server samples of the window."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from isolation_harness.chaos.metrics.base import Measured, metric
from isolation_harness.chaos.metrics.window import GroupWindow
from isolation_harness.reference_app.settings import LEGACY_POOL


def _readings(window: GroupWindow) -> list[Mapping[str, Any]]:
    pools = [entry.get("pools") for entry in window.server]
    return [p for p in pools if isinstance(p, Mapping) and p]


def _figures(window: GroupWindow, field: str) -> list[float]:
    """Each reading's ``field`` summed over the group's services' pools (the legacy
    design has one pool: it serves every service)."""
    readings = _readings(window)
    if not readings:
        return []
    services = window.services or frozenset(readings[0])
    found = []
    for pool_map in readings:
        values = [
            float(pool_map[s][field])
            for s in (services if services & set(pool_map) else {LEGACY_POOL})
            if s in pool_map and field in pool_map[s]
        ]
        if values:
            found.append(sum(values))
    return found


@metric("pool_in_use_max", "count", server=True)
def pool_in_use_max(window: GroupWindow, argument: str | None) -> Measured:
    values = _figures(window, "in_use")
    return max(values) if values else math.nan


@metric("pool_waiting_max", "count", server=True)
def pool_waiting_max(window: GroupWindow, argument: str | None) -> Measured:
    values = _figures(window, "waiting")
    return max(values) if values else math.nan


@metric("acquire_timeouts", "count", server=True)
def acquire_timeouts(window: GroupWindow, argument: str | None) -> Measured:
    """Acquires that gave up during the window: the counter's rise over its readings."""
    counts = _figures(window, "acquire_timeouts")
    if len(counts) < 2:
        return math.nan
    return max(0.0, counts[-1] - counts[0])
