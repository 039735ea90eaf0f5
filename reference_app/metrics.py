"""Prometheus metrics of one app: its own registry (no global one), pool gauges per service."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip


@dataclass(frozen=True)
class PoolStats:
    """A pool's figures at one instant."""

    size: int
    in_use: int
    free: int
    waiting: int
    max_size: int


class PoolCollector(Collector):
    """Reads every pool's figures when scraped, so the gauges are never stale."""

    def __init__(self, stats: Callable[[], Mapping[str, PoolStats]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {
            "size": GaugeMetricFamily("db_pool_size", "Open connections", labels=["service"]),
            "in_use": GaugeMetricFamily(
                "db_pool_in_use", "Connections checked out", labels=["service"]
            ),
            "free": GaugeMetricFamily("db_pool_free", "Idle connections", labels=["service"]),
            "waiting": GaugeMetricFamily(
                "db_pool_waiting", "Requests waiting for a connection", labels=["service"]
            ),
            "max_size": GaugeMetricFamily(
                "db_pool_max_size", "Configured maximum size", labels=["service"]
            ),
        }
        for service, stats in sorted(self._stats().items()):
            for field, family in families.items():
                family.add_metric([service], getattr(stats, field))
        yield from families.values()


class AppMetrics:
    """The app's metrics, registered in its own :class:`CollectorRegistry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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

    def watch_pools(self, stats: Callable[[], Mapping[str, PoolStats]]) -> None:
        """Export the pools' gauges, read at scrape time."""
        self.registry.register(PoolCollector(stats))
