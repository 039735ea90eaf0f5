"""A new metric is one function registered by name and kind: thresholds write it with the
units and references of its kind, the judge measures it on each group and window, with
nothing else to change. One is defined here, ``p75``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest

from isolation_harness.chaos.errors import EXIT_THRESHOLD
from isolation_harness.chaos.metrics import REGISTRY, GroupWindow, Measured, metric
from isolation_harness.chaos.run.runner import run_scenario
from isolation_harness.chaos.scenario.model import Scenario
from isolation_harness.chaos.scenario.thresholds import (
    Quantity,
    ThresholdSyntaxError,
    parse_threshold,
)
from isolation_harness.load.samples import Sample
from tests.plugins.preflight import test_settings


@pytest.fixture
def p75() -> Iterator[None]:
    """The 75th percentile of the group's latencies, defined here and nowhere else."""

    @metric("p75", "latency")
    def p75(window: GroupWindow, argument: str | None) -> Measured:
        return float(np.percentile(window.latencies(), 75))

    try:
        yield
    finally:
        REGISTRY.pop("p75", None)


def test_an_unregistered_metric_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ThresholdSyntaxError, match=r"unknown metric 'p75' \(known: count, "):
        parse_threshold("p75 < 250ms")


@pytest.mark.usefixtures("p75")
def test_a_metric_defined_in_a_test_file_is_written_and_measured_as_its_kind() -> None:
    parsed = parse_threshold("p75 < 1.5s")
    assert (parsed.metric, parsed.rhs) == ("p75", Quantity(1500.0))  # a latency's units
    assert parse_threshold("p75 < 2 * baseline.p75 + 50ms").rhs is not None
    with pytest.raises(ThresholdSyntaxError, match="a rate"):
        parse_threshold("p75 < baseline.error_rate")  # compared with its own kind only
    samples = [Sample(float(n), "deposits.create", float(ms), 201) for n, ms in enumerate(
        [10, 20, 30, 40, 50, 60, 70, 80, 90, 1000])]  # fmt: skip
    window = GroupWindow(samples, 10.0)
    assert window["p75"] == pytest.approx(np.percentile([s.latency_ms for s in samples], 75))
    assert window["p50"] < window["p75"] < window["p99"]
    assert np.isnan(GroupWindow([], 10.0)["p75"])  # silence is never a zero


@pytest.mark.usefixtures("p75")
def test_a_metric_defined_in_a_test_file_is_judged_end_to_end() -> None:
    scenario = Scenario.model_validate(
        {
            "name": "new-metric",
            "load": {"users": 4, "spawn_rate": 4, "mix": {"deposits": 1}},
            "timeline": [{"phase": "steady", "duration": "2s"}],
            # one a correct build meets, one no run can
            "thresholds": {"deposits.*": {"steady": ["p75 < 5s", "p75 < 0.001ms"]}},
            "invariants": "none",
        }
    )
    record = asyncio.run(run_scenario(scenario, test_settings().with_overrides(app_workers=1)))
    verdicts = {v.expression: v for v in record.outcome.thresholds}
    held, breached = verdicts["p75 < 5s"], verdicts["p75 < 0.001ms"]
    assert held.passed
    assert not breached.passed
    assert held.measured == breached.measured
    assert held.measured is not None
    assert 0 < held.measured < 5000
    assert record.outcome.exit_code() == EXIT_THRESHOLD, record.outcome.reasons()
    assert any(
        r.startswith("threshold deposits.* / steady: p75 < 0.001ms: measured ")
        for r in record.outcome.reasons()
    ), record.outcome.reasons()


@pytest.mark.usefixtures("p75")
def test_a_metric_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="metric 'p75' is registered already"):
        metric("p75", "latency")(lambda window, argument: 0.0)
