"""Repeated runs: the pass rate and each threshold's margins over the runs, from journals."""

from __future__ import annotations

import math
from typing import Any

import pytest
from rich.console import Console

from isolation_harness.chaos.report.repetition import margin_spread, repetition
from isolation_harness.chaos.report.summary import print_repetition
from tests.unit.journal_data import passing, slow_deposits


def test_pass_rate_exit_codes_and_the_closest_threshold_first() -> None:
    runs = [passing(1), slow_deposits(2), passing(3)]
    assert [r["exit_code"] for r in runs] == [0, 1, 0]
    figures = repetition(runs, requested=3)
    assert (figures["runs"], figures["passes"]) == (3, 2)
    assert figures["pass_rate"] == pytest.approx(2 / 3)
    assert figures["exit_code"] == 1  # one failure in N fails the gate
    assert figures["exit_codes"] == [0, 1, 0]
    assert figures["seeds"] == [1, 2, 3]
    assert (figures["scenario"], figures["variant"]) == ("made-up", "isolated")
    assert not figures["interrupted"]

    first, *rest = figures["thresholds"]
    assert (first["group"], first["phase"], first["expression"]) == (
        "deposits.*", "outage", "p99 < 1s",
    )  # fmt: skip
    margins = first["margins"]
    assert len(margins) == 3
    assert margins[1] == pytest.approx(-500.0, abs=1.0)  # 1.5 s measured, 1 s allowed
    assert min(margins[0], margins[2]) > 900.0  # about 20 ms measured
    assert first["min"] == margins[1]
    assert first["median"] == sorted(margins)[1]
    assert first["relative_min"] == pytest.approx(first["min"] / 1000.0)
    assert (first["breached"], first["undefined"], first["judged"]) == (1, 0, 3)
    # an equality that held has no room to spare in any run, and no scale (limit 0)
    held = next(t for t in rest if t["expression"] == "error_rate == 0")
    assert (held["margins"], held["min"], held["median"]) == ([0.0] * 3, 0.0, 0.0)
    assert held["relative_min"] is None
    assert [t["min"] for t in rest] == sorted(t["min"] for t in rest)


def verdict(expression: str, margin: float | None, limit: float | None, **fields: Any) -> Any:
    passed = fields.pop("passed", margin is not None and margin >= 0)
    return {
        "source": "threshold", "group": "g", "phase": "p", "expression": expression,
        "passed": passed, "defined": True, "expected": limit, "margin": margin,
        "relative_margin": None if margin is None or not limit else margin / abs(limit),
        **fields,
    }  # fmt: skip


def runs_of(*verdicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"verdicts": {"thresholds": list(v)}} for v in verdicts]


def test_worst_relative_margin_first_and_a_breach_of_zero_before_everything() -> None:
    runs = runs_of(
        [
            verdict("codes in (pool_timeout)", None, None, passed=True),
            verdict("p99 < 1s", 500.0, 1000.0),
            verdict("p95 < 100ms", 10.0, 100.0),
            verdict("failures == 0", 0.0, 0.0),
        ],
        [
            verdict("codes in (pool_timeout)", None, None, passed=True),
            verdict("p99 < 1s", 50.0, 1000.0),
            verdict("p95 < 100ms", 20.0, 100.0),
            verdict("failures == 0", -3.0, 0.0),
        ],
    )
    rows = margin_spread(runs)
    # failures == 0 breached: no scale, so infinitely bad; then 5 % and 10 % of the limit;
    # a threshold without any margin last
    assert [r["expression"] for r in rows] == [
        "failures == 0", "p99 < 1s", "p95 < 100ms", "codes in (pool_timeout)",
    ]  # fmt: skip
    failures, p99, _, codes = rows
    assert (failures["min"], failures["median"], failures["breached"]) == (-3.0, -1.5, 1)
    assert (p99["min"], p99["median"]) == (50.0, 275.0)
    assert (p99["relative_min"], p99["relative_median"]) == pytest.approx((0.05, 0.275))
    assert (codes["min"], codes["median"], codes["undefined"]) == (None, None, 2)


def test_undefined_and_missing_runs_are_counted_not_averaged() -> None:
    runs = runs_of(
        [verdict("p99 < 1s", 400.0, 1000.0)],
        [verdict("p99 < 1s", None, 1000.0, passed=False, defined=False)],
        [],  # not judged at all in this run
    )
    [row] = margin_spread(runs)
    assert row["margins"] == [400.0, None, None]
    assert (row["judged"], row["undefined"], row["breached"]) == (2, 1, 0)
    assert (row["min"], row["median"]) == (400.0, 400.0)


def test_the_console_shows_the_pass_rate_and_the_closest_threshold_first() -> None:
    figures = repetition([passing(1), slow_deposits(2)], requested=2)
    console = Console(record=True, width=200)
    print_repetition(figures, console)
    text = console.export_text()
    assert "passed 1/2 runs" in text
    assert "made-up [isolated]: exit codes 0 (1 run), 1 (1 run) — exit 1" in text
    assert text.index("p99 < 1s") < text.index("error_rate == 0")
    assert "-50%" in text  # the worst run's margin, as a share of the limit


def test_an_interrupted_repetition_says_so() -> None:
    stopped = passing(2)
    stopped["interrupted"] = True
    stopped["exit_code"] = 4
    figures = repetition([passing(1), stopped], requested=5)
    assert (figures["runs"], figures["requested"], figures["interrupted"]) == (2, 5, True)
    assert figures["exit_code"] == 4
    console = Console(record=True, width=200)
    print_repetition(figures, console)
    assert "passed 1/2 runs (interrupted after 2 of 5)" in console.export_text()
    assert math.isclose(figures["pass_rate"], 0.5)
