"""The requests over time that the reports' timelines draw (load/series.py)."""

from __future__ import annotations

import pytest

from isolation_harness.load.samples import Sample
from isolation_harness.load.series import MAX_BUCKETS, bucket_seconds, time_series


def sample(start: float, name: str = "deposits.create", latency: float = 10.0,
           failed: bool = False) -> Sample:  # fmt: skip
    return Sample(start, name, latency, 503 if failed else 200, failed=failed)


def test_each_request_counts_in_the_bucket_it_started_in_per_service() -> None:
    samples = [
        sample(100.2), sample(100.9), sample(101.5, failed=True),
        sample(100.5, "p2p.trade_open"), sample(102.1, "wallet.balances"),
    ]  # fmt: skip
    series = time_series(samples, origin=100.0)
    assert series["bucket_s"] == 1.0
    assert series["t"] == [0.0, 1.0, 2.0]
    assert set(series["groups"]) == {"deposits", "p2p", "wallet"}
    deposits = series["groups"]["deposits"]
    assert deposits["count"] == [2, 1, 0]
    assert deposits["failures"] == [0, 1, 0]
    assert series["groups"]["p2p"]["count"] == [1, 0, 0]
    assert series["groups"]["wallet"]["count"] == [0, 0, 1]


def test_percentiles_per_bucket_and_none_where_no_request_started() -> None:
    samples = [sample(0.01 * i, latency=float(i + 1)) for i in range(100)]  # 1..100 ms in [0, 1)
    samples.append(sample(2.5, latency=7.0))
    deposits = time_series(samples, origin=0.0)["groups"]["deposits"]
    assert deposits["p50"][0] == pytest.approx(50.5)
    assert deposits["p99"][0] == pytest.approx(99.01)
    assert deposits["p50"][1] is None
    assert deposits["p99"][1] is None
    assert deposits["p50"][2] == deposits["p99"][2] == 7.0


def test_the_ramp_before_the_first_phase_has_negative_times() -> None:
    series = time_series([sample(97.5), sample(100.5)], origin=100.0)
    assert series["t"][0] == -3.0
    assert sum(series["groups"]["deposits"]["count"]) == 2


def test_long_runs_get_longer_buckets_and_at_most_max_buckets_points() -> None:
    assert bucket_seconds(60) == 1.0
    assert bucket_seconds(MAX_BUCKETS * 3.5) == 4.0
    samples = [sample(float(t)) for t in range(0, 600, 3)]
    series = time_series(samples, origin=0.0)
    assert len(series["t"]) <= MAX_BUCKETS
    assert sum(series["groups"]["deposits"]["count"]) == len(samples)


def test_health_probes_belong_to_no_group_and_no_requests_give_no_groups() -> None:
    assert time_series([sample(1.0, "health.ready")], origin=0.0)["groups"] == {}
    assert time_series([], origin=0.0) == {"origin": 0.0, "bucket_s": 1.0, "t": [], "groups": {}}
