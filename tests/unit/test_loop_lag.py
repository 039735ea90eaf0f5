"""The event loop's lag as the app exports it: every measurement in the histogram, the
worst of the last second in the gauge."""

from __future__ import annotations

from prometheus_client import generate_latest

from isolation_harness.chaos.run.server import loop_lag
from isolation_harness.reference_app.loop_lag import LoopLag
from isolation_harness.reference_app.metrics import AppMetrics
from tests.plugins.api_helpers import metric


def exported(metrics: AppMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_the_gauge_holds_the_worst_lag_of_the_last_window() -> None:
    metrics = AppMetrics()
    lag = LoopLag(metrics, window=1.0)
    lag.record(0.002, at=10.0)
    lag.record(0.300, at=10.1)  # the loop was blocked
    lag.record(0.001, at=10.9)
    assert metric(exported(metrics), "event_loop_lag_max_seconds") == 0.3
    lag.record(0.004, at=11.2)  # the block is over a second ago
    assert metric(exported(metrics), "event_loop_lag_max_seconds") == 0.004


def test_every_measurement_is_counted_in_the_histogram() -> None:
    metrics = AppMetrics()
    lag = LoopLag(metrics)
    for at, late in enumerate([0.001, 0.002, 0.3]):
        lag.record(late, at=float(at))
    text = exported(metrics)
    assert metric(text, "event_loop_lag_seconds_count") == 3
    assert metric(text, "event_loop_lag_seconds_bucket", le="0.1") == 2
    assert metric(text, "event_loop_lag_seconds_bucket", le="0.5") == 3


def test_the_runner_reads_what_the_app_exports() -> None:
    metrics = AppMetrics()
    lag = LoopLag(metrics)
    lag.record(0.002, at=0.0)
    lag.record(0.3, at=0.1)
    read = loop_lag(exported(metrics))
    assert read is not None
    assert read["lag_max"] == 0.3
    assert read["lag_buckets"]["0.25"] == 1
    assert read["lag_buckets"]["+Inf"] == 2
    assert loop_lag("# an app that does not measure its loop\n") is None
