"""How late this worker's event loop runs what is due: its lag, exported in /metrics.

A task sleeps :data:`INTERVAL` and records how much later than that it woke. Everything the
loop runs waits as long: a loop blocked by a synchronous call, or starved of CPU on a
saturated machine, delays every request by its lag. The harness reads it to tell a run whose
latencies measured the machine from one that measured the services
(``chaos/judge/saturation.py``).
"""

from __future__ import annotations

import asyncio
from collections import deque

from isolation_harness.reference_app.metrics import AppMetrics

#: seconds between two measurements: ten a second, a negligible cost to the loop
INTERVAL = 0.1
#: the gauge shows the worst lag of this many seconds (the harness samples once a second)
WINDOW = 1.0


class LoopLag:
    """Measures the lag of the running loop into ``metrics`` (a histogram and a gauge)."""

    def __init__(
        self, metrics: AppMetrics, *, interval: float = INTERVAL, window: float = WINDOW
    ) -> None:
        self.metrics = metrics
        self.interval = interval
        self.window = window
        self._recent: deque[tuple[float, float]] = deque()

    def record(self, lag: float, at: float) -> None:
        """One measurement: ``lag`` seconds late, woken at ``at`` (the loop's clock)."""
        self.metrics.loop_lag.observe(lag)
        self._recent.append((at, lag))
        while self._recent[0][0] < at - self.window:
            self._recent.popleft()
        self.metrics.loop_lag_max.set(max(late for _, late in self._recent))

    async def watch(self) -> None:
        """Measure until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            asleep = loop.time()
            await asyncio.sleep(self.interval)
            woken = loop.time()
            self.record(max(0.0, woken - asleep - self.interval), woken)
