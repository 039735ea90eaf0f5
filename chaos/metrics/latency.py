"""Latencies (milliseconds) of a group's requests: percentiles, the slowest, the mean."""

from __future__ import annotations

import numpy as np

from isolation_harness.chaos.metrics.base import Measured, metric
from isolation_harness.chaos.metrics.window import GroupWindow


def _percentile(q: int) -> None:
    @metric(f"p{q}", "latency")
    def measure(window: GroupWindow, argument: str | None) -> Measured:
        return float(np.percentile(window.latencies(), q))


for _q in (50, 90, 95, 99):
    _percentile(_q)


@metric("max", "latency")
def slowest(window: GroupWindow, argument: str | None) -> Measured:
    return float(window.latencies().max())


@metric("mean", "latency")
def mean(window: GroupWindow, argument: str | None) -> Measured:
    return float(window.latencies().mean())
