"""JUnit from journals: one suite per scenario, also when it ran several times."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from isolation_harness.chaos.report.junit import write_junit
from tests.unit.journal_data import passing, slow_deposits


def written(tmp_path: Path, *scenarios: list[dict[str, object]]) -> ET.Element:
    path = tmp_path / "junit.xml"
    write_junit(list(scenarios), path)
    return ET.parse(path).getroot()  # well-formed, or this raises


def properties(element: ET.Element) -> dict[str, str]:
    props = element.find("properties")
    assert props is not None
    return {p.get("name", ""): p.get("value", "") for p in props.findall("property")}


def case(suite: ET.Element, name: str) -> ET.Element:
    [found] = [c for c in suite.findall("testcase") if c.get("name") == name]
    return found


def test_one_run_is_one_suite_with_the_margin_of_each_threshold(tmp_path: Path) -> None:
    run = slow_deposits(7)
    [suite] = written(tmp_path, [run]).findall("testsuite")
    assert suite.get("name") == "made-up [isolated]"
    figures = properties(suite)
    assert (figures["seed"], figures["exit_code"], figures["exit_codes"]) == ("7", "1", "1")
    assert (figures["runs"], figures["passes"], figures["pass_rate"]) == ("1", "0", "0")
    outcome = case(suite, "outcome (expect pass)")
    failure = outcome.find("failure")
    assert failure is not None
    assert failure.get("message") == "FAIL (threshold) (exit 1)"
    p99 = case(suite, "deposits.* outage: p99 < 1s")
    breach = p99.find("failure")
    assert breach is not None
    assert breach.get("message", "").startswith("p99 < 1s: measured 1500ms")
    figures = properties(p99)
    assert float(figures["margin_min"]) == float(figures["margin_median"]) == -500.0
    assert float(figures["relative_margin_min"]) == -0.5
    assert (figures["breached"], figures["judged"], figures["margin_undefined"]) == ("1", "1", "0")
    assert p99.find("system-out") is None
    held = properties(case(suite, "deposits.* outage: error_rate == 0"))
    assert (held["margin_min"], held["relative_margin_min"]) == ("0", "-")
    assert suite.get("failures") == "2"


def test_repeated_runs_are_one_suite_with_pass_rate_and_margins(tmp_path: Path) -> None:
    root = written(tmp_path, [passing(1), slow_deposits(2)], [passing(3)])
    first, second = root.findall("testsuite")
    assert properties(first) | {
        "seed": "1,2", "runs": "2", "passes": "1", "pass_rate": "0.5", "exit_codes": "0,1",
        "exit_code": "1", "result": "FAIL (threshold)",
    } == properties(first)  # fmt: skip
    assert (properties(second)["runs"], properties(second)["pass_rate"]) == ("1", "1")

    ok = case(first, "outcome of run 1/2 (expect pass)")
    assert ok.find("failure") is None
    failed = case(first, "outcome of run 2/2 (expect pass)").find("failure")
    assert failed is not None
    assert failed.get("message") == "FAIL (threshold) (exit 1)"

    p99 = case(first, "deposits.* outage: p99 < 1s")
    breach = p99.find("failure")
    assert breach is not None
    assert breach.get("message", "").startswith(
        "breached in 1 of 2 runs (2); run 2: p99 < 1s: measured 1500ms"
    )
    figures = properties(p99)
    assert float(figures["margin_min"]) == pytest.approx(-500.0)
    assert float(figures["margin_median"]) > -500.0
    assert (figures["breached"], figures["judged"]) == ("1", "2")
    out = p99.find("system-out")
    assert out is not None
    assert (out.text or "").startswith("margin over 2 runs: min -500, median ")
    assert case(first, "deposits.* outage: error_rate == 0").find("failure") is None
    assert (first.get("tests"), first.get("failures"), first.get("errors")) == (
        str(len(first.findall("testcase"))), "2", "0",
    )  # fmt: skip


def test_a_breach_expected_in_repeated_runs_is_reported_not_failed(tmp_path: Path) -> None:
    runs = [slow_deposits(1), slow_deposits(2)]
    for run in runs:
        run["expect"] = "fail"
    [suite] = written(tmp_path, runs).findall("testsuite")
    p99 = case(suite, "deposits.* outage: p99 < 1s")
    assert p99.find("failure") is None
    out = p99.find("system-out")
    assert out is not None
    lines = (out.text or "").splitlines()
    assert lines[0].startswith("failed (failures expected): breached in 2 of 2 runs (1, 2)")
    assert lines[1].startswith("margin over 2 runs: min -500")
