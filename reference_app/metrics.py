"""Prometheus metrics of one app: its own registry (no global one), pool gauges per service.

With several worker processes (``PROMETHEUS_MULTIPROC_DIR`` set by the server before the
workers start), counters and histograms are summed over the workers by prometheus-client's
multiprocess collector, and each worker publishes its pools' figures as live-summed gauges.
The event loop's worst recent lag (``reference_app/loop_lag.py``) is the worst of the live
workers'.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from isolation_harness.reference_app.settings import MULTIPROC_ENV

#: bytes of a metric file's header (how much of it is used), written once it is sized
HEADER_BYTES = 8
_POOL_HELP = {
    "size": "Open connections",
    "in_use": "Connections checked out",
    "free": "Idle connections",
    "waiting": "Requests waiting for a connection",
    "max_size": "Configured maximum size",
    "leaked": "Connections held by a leak fault",
}

LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
#: finer around the tenths of a second where a lagging loop starts to matter
LAG_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5,
    0.75, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


@dataclass(frozen=True)
class PoolStats:
    """A pool's figures at one instant."""

    size: int
    in_use: int
    free: int
    waiting: int
    max_size: int
    #: connections a leak fault holds (0 unless the service is broken with ``leak``)
    leaked: int = 0


class PoolCollector(Collector):
    """Reads every pool's figures when scraped, so the gauges are never stale."""

    def __init__(self, stats: Callable[[], Mapping[str, PoolStats]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {
            field: GaugeMetricFamily(f"db_pool_{field}", text, labels=["service"])
            for field, text in _POOL_HELP.items()
        }
        for service, stats in sorted(self._stats().items()):
            for field, family in families.items():
                family.add_metric([service], getattr(stats, field))
        yield from families.values()


class AppMetrics:
    """The app's metrics, registered in its own :class:`CollectorRegistry`."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        if self.multiprocess:
            _count_in_worker_files()
        self.registry = CollectorRegistry()
        self._pool_stats: Callable[[], Mapping[str, PoolStats]] | None = None
        self._pool_gauges: dict[str, Gauge] = {}
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.acquire_wait = Histogram(
            "db_pool_acquire_seconds",
            "Time to get a connection from the pool",
            ["service"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.acquire_timeouts = Counter(
            "db_pool_acquire_timeouts_total",
            "Acquires that gave up after the acquire timeout",
            ["service"],
            registry=self.registry,
        )
        self.dead_connections = Counter(
            "db_pool_dead_connections_total",
            "Connections found dead and replaced",
            ["service"],
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "event_loop_lag_seconds",
            "How late the event loop woke a task that slept (reference_app/loop_lag.py)",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.loop_lag_max = Gauge(
            "event_loop_lag_max_seconds",
            "The worst event-loop lag of the last second (the worst worker's)",
            registry=self.registry,
            multiprocess_mode="livemax",
        )

    def watch_pools(self, stats: Callable[[], Mapping[str, PoolStats]]) -> None:
        """Export the pools' gauges, read at scrape time (or published, with several workers)."""
        self._pool_stats = stats
        if not self.multiprocess:
            self.registry.register(PoolCollector(stats))
            return
        for field in (f.name for f in fields(PoolStats)):
            self._pool_gauges[field] = Gauge(
                f"db_pool_{field}",
                _POOL_HELP[field],
                ["service"],
                registry=self.registry,
                multiprocess_mode="livesum",
            )

    def publish_pools(self) -> None:
        """Write this worker's pool figures where the other workers' scrapes see them."""
        if not self._pool_gauges or self._pool_stats is None:
            return
        for service, stats in self._pool_stats().items():
            for field, gauge in self._pool_gauges.items():
                gauge.labels(service).set(getattr(stats, field))

    def render(self) -> bytes:
        """The Prometheus text of this app (all workers' figures with several workers)."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        self.publish_pools()
        merged = CollectorRegistry()
        merged.register(WorkerFiles(os.environ[MULTIPROC_ENV]))
        return generate_latest(merged)


def _count_in_worker_files() -> None:
    """Keep this process's metrics in its own file in the server's folder, even when
    prometheus-client was imported before the server named that folder: it chooses between
    memory and files once, at import, and a worker forked from a server that imported it early
    (a ``sitecustomize``, an agent) would count in memory, unseen by every scrape."""
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


class WorkerFiles(Collector):
    """Every worker's metric files merged, as ``MultiProcessCollector`` does, but without the
    files too short to hold their header: a worker creates its file empty and sizes it a
    moment later, and prometheus-client 0.26 fails the whole scrape on such a file
    (prometheus/client_python#1199; seen as a 500 on the first scrape of a new stack)."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)

    def collect(self) -> Iterator[Metric]:
        files = []
        for path in sorted(self.folder.glob("*.db")):
            with contextlib.suppress(FileNotFoundError):  # a dead worker's, removed meanwhile
                if path.stat().st_size >= HEADER_BYTES:
                    files.append(str(path))
        yield from MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
