"""The metrics of one request group in one window, computed on demand from the samples.

:class:`GroupWindow` is a read-only mapping from a metric key (``p99``, ``status_503``,
``naming(p2p)``, ``codes``…; see :mod:`chaos.scenario.thresholds`) to its value. A value is NaN
(or, for ``codes``, absent) when the window holds no sample of the group: silence is never
a zero. Server metrics (the pools of the group's services) come from the server samples
taken during the window, and are NaN without any.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from chaos.judge.evidence import ServerSample
from chaos.scenario.thresholds import (
    METRICS,
    SERVER_METRICS,
    Measured,
    metric_argument,
    metric_kind,
)
from load.kinds import service_of
from load.samples import Sample
from reference_app.settings import LEGACY_POOL

PERCENTILES = {"p50": 50, "p90": 90, "p95": 95, "p99": 99}
NAN = math.nan


def in_flight_max(samples: Sequence[Sample]) -> int:
    """The most of ``samples`` in flight at once (each from its start to its end)."""
    events = sorted(
        [(s.start, 1) for s in samples] + [(s.end, -1) for s in samples],
        key=lambda event: (event[0], event[1]),  # an end before a start at the same instant
    )
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


class GroupWindow(Mapping[str, Measured]):
    """One request group (a glob) in one window: its samples and what they measure."""

    def __init__(
        self,
        samples: Sequence[Sample],
        seconds: float,
        *,
        services: frozenset[str] = frozenset(),
        targets: frozenset[str] = frozenset(),
        server: Sequence[ServerSample] = (),
    ) -> None:
        self.samples = samples
        self.seconds = seconds
        #: the app services the group's requests belong to
        self.services = services
        #: the services the window's faults aim at (a failure naming one is not foreign)
        self.targets = targets
        self.server = server
        self.failed = [s for s in samples if s.failed]
        self._cache: dict[str, Measured] = {}
        self._latencies: Any = None

    # -- the mapping ------------------------------------------------------------------------

    def __getitem__(self, metric: str) -> Measured:
        if metric not in self._cache:
            try:
                metric_kind(metric)
            except KeyError:
                raise KeyError(metric) from None
            self._cache[metric] = self._measure(metric)
        return self._cache[metric]

    def __iter__(self) -> Iterator[str]:
        return iter(METRICS)

    def __len__(self) -> int:
        return len(METRICS)

    @property
    def count(self) -> int:
        return len(self.samples)

    # -- measuring --------------------------------------------------------------------------

    def _measure(self, metric: str) -> Measured:
        if metric in SERVER_METRICS:
            return self._server(metric)
        if not self.samples:
            return NAN
        failed = self.failed
        if metric == "count":
            return float(len(self.samples))
        if metric == "failures":
            return float(len(failed))
        if metric == "rps":
            return len(self.samples) / self.seconds
        if metric == "error_rate":
            return len(failed) / len(self.samples)
        if metric in PERCENTILES:
            return float(np.percentile(self._latency_array(), PERCENTILES[metric]))
        if metric == "max":
            return float(self._latency_array().max())
        if metric == "mean":
            return float(self._latency_array().mean())
        if metric == "unstructured_5xx":
            return float(sum(1 for s in failed if s.status >= 500 and not s.structured))
        if metric == "timeouts":
            return float(sum(1 for s in self.samples if s.timed_out))
        if metric == "connection_errors":
            return float(sum(1 for s in self.samples if s.connection_failed))
        if metric == "in_flight_max":
            return float(in_flight_max(self.samples))
        if metric == "foreign_failures":
            allowed = self.services | self.targets
            return float(
                sum(1 for s in failed if s.error_service and s.error_service not in allowed)
            )
        if metric == "codes":
            return frozenset(s.error_code for s in failed if s.error_code)
        if metric.startswith("status_"):
            status = int(metric.removeprefix("status_"))
            return float(sum(1 for s in self.samples if s.status == status))
        argument = metric_argument(metric)
        if metric.startswith("naming("):
            return float(sum(1 for s in failed if s.error_service == argument))
        if metric.startswith("share_naming("):
            if not failed:
                return NAN  # a share of no failure is undefined
            return sum(1 for s in failed if s.error_service == argument) / len(failed)
        if metric.startswith("code("):
            return float(sum(1 for s in failed if s.error_code == argument))
        raise KeyError(metric)  # pragma: no cover - metric_kind() knows no other

    def _latency_array(self) -> Any:
        if self._latencies is None:
            self._latencies = np.fromiter(
                (s.latency_ms for s in self.samples), dtype=np.float64, count=len(self.samples)
            )
        return self._latencies

    def _server(self, metric: str) -> float:
        """A pool figure over the window's server samples, for the group's services."""
        pools = [entry.get("pools") for entry in self.server]
        readings = [p for p in pools if isinstance(p, Mapping) and p]
        if not readings:
            return NAN
        services = self.services or frozenset(readings[0])

        def figure(pool_map: Mapping[str, Any], field: str) -> float | None:
            # The legacy design has one pool: it serves every service.
            values = [
                float(pool_map[s][field])
                for s in (services if services & set(pool_map) else {LEGACY_POOL})
                if s in pool_map and field in pool_map[s]
            ]
            return sum(values) if values else None

        if metric == "acquire_timeouts":
            counts = [c for c in (figure(p, "acquire_timeouts") for p in readings) if c is not None]
            if len(counts) < 2:
                return NAN
            return max(0.0, counts[-1] - counts[0])
        field = "in_use" if metric == "pool_in_use_max" else "waiting"
        values = [v for v in (figure(p, field) for p in readings) if v is not None]
        return max(values) if values else NAN


def services_of(names: Sequence[str]) -> frozenset[str]:
    """The app services that answer these request names."""
    return frozenset(s for s in (service_of(n) for n in names) if s is not None)
