"""Exact statistics from raw samples: percentiles as numpy computes them, windows by time."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from isolation_harness.load.kinds import parse_mix, parse_think_time
from isolation_harness.load.runner import LoadError, LoadPlan
from isolation_harness.load.samples import Sample, SampleCounter, read_samples
from isolation_harness.load.stats import Window, by_group, group_stats, in_window, matching


def synthetic(n: int = 5000, seed: int = 7) -> list[Sample]:
    rng = random.Random(seed)
    names = ["deposits.create", "deposits.get", "p2p.trade_open", "swap.quote"]
    samples = []
    for i in range(n):
        status = rng.choice([200, 201, 201, 201, 409, 503, 0])
        failed = status in (503, 0)
        samples.append(
            Sample(
                start=1_000.0 + i * 0.01,
                name=rng.choice(names),
                latency_ms=rng.lognormvariate(3, 1),
                status=status,
                failed=failed,
                error_code="database_unavailable" if status == 503 else None,
                error_service="p2p" if status == 503 else None,
                structured=status == 503,
                transport_error="timeout" if status == 0 else None,
            )
        )
    return samples


def test_percentiles_and_rates_equal_numpys_on_the_raw_samples() -> None:
    samples = synthetic()
    stats = by_group(samples, seconds=50.0)
    for name, group in stats.items():
        chosen = samples if name == "*" else [s for s in samples if s.name == name]
        latencies = np.array([s.latency_ms for s in chosen])
        assert group.count == len(chosen)
        assert group.p50 == np.percentile(latencies, 50)
        assert group.p90 == np.percentile(latencies, 90)
        assert group.p95 == np.percentile(latencies, 95)
        assert group.p99 == np.percentile(latencies, 99)
        assert group.max == latencies.max()
        assert group.mean == pytest.approx(latencies.mean())
        failures = sum(1 for s in chosen if s.failed)
        assert group.failures == failures
        assert group.error_rate == failures / len(chosen)
        assert group.rps == len(chosen) / 50.0


def test_error_breakdown_names_service_and_code() -> None:
    samples = synthetic()
    group = group_stats("*", samples, 1.0)
    assert group.errors["p2p:database_unavailable"] == sum(1 for s in samples if s.status == 503)
    assert group.errors["client:timeout"] == sum(1 for s in samples if s.status == 0)
    assert group.unstructured_5xx == 0
    bare = [Sample(0.0, "x", 1.0, 500, True)]
    assert group_stats("x", bare, 1.0).unstructured_5xx == 1
    # a body that names a code and a service but lacks the rest of the shape is unstructured
    partial = [Sample(0.0, "x", 1.0, 503, True, "timeout", "p2p", structured=False)]
    assert group_stats("x", partial, 1.0).unstructured_5xx == 1


def test_windows_cut_by_start_time() -> None:
    samples = synthetic(1000)
    window = Window(1_002.0, 1_005.0)
    inside = in_window(samples, window)
    assert [s.start for s in inside] == [s.start for s in samples if 1_002.0 <= s.start < 1_005.0]
    assert len(inside) == 300
    assert in_window(samples, None) == samples
    stats = by_group(inside, window.seconds)
    assert stats["*"].count == 300
    assert stats["*"].rps == 100.0
    with pytest.raises(ValueError, match="empty window"):
        Window(5.0, 5.0)


def test_glob_matching_of_groups() -> None:
    samples = synthetic(200)
    deposits = matching(samples, "deposits.*")
    assert deposits
    assert {s.name for s in deposits} == {"deposits.create", "deposits.get"}
    assert matching(samples, "wallet.*") == []


def test_empty_group_is_nan_not_an_error() -> None:
    group = group_stats("none", [], 10.0)
    assert group.count == 0
    assert math.isnan(group.p99)
    assert math.isnan(group.error_rate)  # "error_rate == 0" must not pass on no traffic


def test_sample_line_round_trip() -> None:
    sample = Sample(1234.5, "deposits.create", 12.345, 503, True, "pool_timeout", "deposits")
    assert Sample.from_line(sample.to_line()) == sample
    odd = Sample(1.25, 'a "quoted"\\name', 1.0, 0, True, None, None, False, "connection")
    assert Sample.from_line(odd.to_line()) == odd
    assert odd.connection_failed
    assert not odd.timed_out
    structured = Sample(1.0, "p2p.trade_open", 5.0, 503, True, "timeout", "p2p", True)
    assert Sample.from_line(structured.to_line()) == structured
    assert json.loads(sample.to_line()) == [1234.5, "deposits.create", 12.345, 503, 1,
                                            "pool_timeout", "deposits", 0, None, None]  # fmt: skip
    made = Sample(2.0, "wallet.balances", 3.0, 200, user="wallet#0.2")
    assert Sample.from_line(made.to_line()) == made


def test_mix_parsing() -> None:
    assert parse_mix("deposits=6,p2p=2, swap") == {"deposits": 6, "p2p": 2, "swap": 1}
    for bad, message in [("nope=1", "unknown user kind"), ("deposits=0", "at least 1"),
                         ("deposits=x", "whole number"), ("", "no user kind"),
                         ("p2p=1,p2p=2", "twice")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            parse_mix(bad)


def test_plan_validation() -> None:
    good = {"host": "http://x", "users": 1, "spawn_rate": 1.0, "duration": 1.0,
            "mix": {"deposits": 1}, "admin_token": "t"}  # fmt: skip
    LoadPlan(**good)  # type: ignore[arg-type]
    cases = [
        ("users", 0, "users"),
        ("spawn_rate", 0, "spawn rate"),
        ("duration", -1, "duration"),
        ("workers", -1, "workers"),
        ("mix", {"x": 1}, "unknown user kind"),
        ("mix", {}, "no user"),
    ]
    for field, value, message in cases:
        with pytest.raises(LoadError, match=message):
            LoadPlan(**{**good, field: value})  # type: ignore[arg-type]


def test_the_sample_counter_counts_complete_lines_as_the_files_grow(tmp_path: Path) -> None:
    counter = SampleCounter(tmp_path)
    assert counter.update() == 0
    line = Sample(1.5, "health.live", 2.0, 200).to_line()
    first, second = tmp_path / "samples-1.jsonl", tmp_path / "samples-2.jsonl"
    first.write_text(line * 3 + line[:10])  # a process is in the middle of a line
    assert counter.update() == 3
    with first.open("a") as handle:
        handle.write(line[10:] + line)
    second.write_text(line * 2)
    (tmp_path / "ops-1.jsonl").write_text("{}\n")  # not a samples file
    assert counter.update() == 7
    assert counter.update() == 7  # nothing new
    assert counter.update() == len(read_samples(tmp_path))


def test_think_time_parsing() -> None:
    assert parse_think_time("0") == (0.0, 0.0)
    assert parse_think_time("0.05, 0.3") == (0.05, 0.3)
    for bad in ("", "a", "1,0", "-1", "1,2,3"):
        with pytest.raises(ValueError, match="think time"):
            parse_think_time(bad)
