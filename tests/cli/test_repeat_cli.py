"""`harness run --repeat N`: the pass rate, each threshold's margins over the runs, and the
same figures in repeat.json and the JUnit file; first with a stand-in runner (how runs are
kept, seeded and stopped), then as a user runs it, against a real stack."""

from __future__ import annotations

import json
import shutil
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from isolation_harness.chaos.cli import commands as cli
from isolation_harness.chaos.cli import runs as scenario_command
from isolation_harness.chaos.errors import EXIT_HARNESS_ERROR
from isolation_harness.chaos.judge.verdicts import ThresholdVerdict
from isolation_harness.chaos.run.record import RunRecord
from isolation_harness.chaos.scenario.model import Scenario
from isolation_harness.chaos.stack.settings import Settings
from tests.plugins import commands

ROOT = Path(__file__).resolve().parents[2]
HARNESS = str(Path(sys.executable).with_name("harness"))


def properties(element: ET.Element) -> dict[str, str]:
    props = element.find("properties")
    assert props is not None
    return {p.get("name", ""): p.get("value", "") for p in props.findall("property")}


class StandInRunner:
    """Instead of ``run_scenario``: a run in no time, its p99 100 ms then 200 ms, in turn,
    against ``p99 < 250ms``; Ctrl-C during run ``interrupted_at`` (counting every run)."""

    def __init__(self, interrupted_at: int | None = None) -> None:
        self.seeds: list[int | None] = []
        self.interrupted_at = interrupted_at

    async def __call__(self, scenario: Scenario, *_: Any, seed: int | None, **__: Any) -> RunRecord:
        self.seeds.append(seed)
        record = RunRecord(scenario, None, seed or 0, started_at=time.time())
        record.ended_at = record.started_at + 1.0
        p99 = 200.0 if len(self.seeds) % 2 == 0 else 100.0
        verdict = ThresholdVerdict(
            "deposits.*", "only", "p99 < 250ms", p99 < 250.0, p99, 250.0, 50, op="<"
        )
        record.outcome.thresholds.append(verdict)
        if len(self.seeds) == self.interrupted_at:
            record.interrupted = True
            record.outcome.harness_errors.append("interrupted (SIGINT/SIGTERM)")
        return record


@pytest.mark.light
def test_every_run_is_kept_uses_the_fixed_seed_and_ctrl_c_stops_the_repetition(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    runner = StandInRunner(interrupted_at=2)
    monkeypatch.setattr(scenario_command, "run_scenario", runner)
    console = Console(record=True, width=200)
    code = scenario_command.run_files(
        [ROOT / "tests/data/scenarios/minimal.yaml"], Settings.from_env({}), console,
        variant=None, seed=5, reuse=True, reports=tmp_path, junit=None, repeat=3,
    )  # fmt: skip
    assert code == EXIT_HARNESS_ERROR
    assert runner.seeds == [5, 5], "--seed fixes every run's seed; nothing runs after Ctrl-C"
    folder = tmp_path / "minimal-isolated"
    assert sorted(p.name for p in folder.iterdir()) == [
        "index.html",
        "junit.xml",
        "repeat.json",
        "run-1",
        "run-2",
    ]
    for run in ("run-1", "run-2"):
        assert sorted(p.name for p in (folder / run).iterdir()) == ["journal.json", "report.html"]
    text = console.export_text()
    assert f"report: {folder / 'index.html'}" in text
    index = (folder / "index.html").read_text()
    assert ">1/2 <" in index
    assert "(interrupted)" in index
    assert "passed 1/2 runs (interrupted after 2 of 3)" in text
    [figures] = json.loads((folder / "repeat.json").read_text())["scenarios"]
    assert (figures["requested"], figures["runs"], figures["interrupted"]) == (3, 2, True)
    assert (figures["exit_codes"], figures["exit_code"]) == ([0, 4], 4)
    [p99] = figures["thresholds"]
    assert (p99["margins"], p99["min"], p99["median"]) == ([150.0, 50.0], 50.0, 100.0)
    assert (p99["relative_min"], p99["relative_median"]) == (0.2, 0.4)
    [suite] = ET.parse(folder / "junit.xml").getroot().findall("testsuite")
    assert properties(suite)["exit_codes"] == "0,4"


@pytest.mark.light
def test_suite_repeat_runs_each_scenario_n_times_with_one_repeat_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    for name in ("minimal", "good_full"):
        shutil.copy(ROOT / "tests/data/scenarios" / f"{name}.yaml", gate)
    runner = StandInRunner()
    monkeypatch.setattr(scenario_command, "run_scenario", runner)
    reports = tmp_path / "reports"
    with pytest.raises(SystemExit) as exited:
        cli.main(["suite", str(gate), "--reports", str(reports), "--repeat", "2"])
    assert exited.value.code == 0
    assert runner.seeds == [None] * 4  # each run's own: the file's, else a new one
    out = capsys.readouterr().out
    assert out.count("passed 2/2 runs") == 2
    assert f"repeat: {reports / 'repeat.json'}" in out
    data = json.loads((reports / "repeat.json").read_text())
    assert [(f["scenario"], f["runs"]) for f in data["scenarios"]] == [
        ("deposits-survive-p2p-outage", 2), ("minimal", 2),
    ]  # fmt: skip
    for figures in data["scenarios"]:
        [p99] = figures["thresholds"]
        assert (p99["min"], p99["median"]) == (50.0, 100.0)
        folder = reports / f"{figures['scenario']}-isolated"
        assert (folder / "run-1" / "journal.json").is_file()
        assert (folder / "run-2" / "journal.json").is_file()
    suites = ET.parse(reports / "junit.xml").getroot().findall("testsuite")
    assert [properties(s)["runs"] for s in suites] == ["2", "2"]
    index = (reports / "index.html").read_text()
    assert f"report: {reports / 'index.html'}" in out
    assert index.count(">2/2<") == 2  # one row per scenario, each with its pass rate
    assert 'href="minimal-isolated/run-2/report.html"' in index


STEADY = """\
name: repeat-steady
description: Deposits with nothing broken, and a latency limit no stack can keep.
load: {users: 8, spawn_rate: 8, mix: {deposits: 1}}
timeline:
  - {phase: steady, duration: 2s}
thresholds:
  "deposits.*":
    steady: ["error_rate == 0", "p99 < 5s", "count >= 10", "p99 < 1ms"]
invariants: none
expect: pass
"""


def test_repeat_against_the_stack_prints_pass_rate_and_margins_into_json_and_junit(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    scenario = tmp_path / "steady.yaml"
    scenario.write_text(STEADY)
    result = commands.run(
        [HARNESS, "run", "--reuse", "--repeat", "2", str(scenario),
         "--reports", str(tmp_path / "reports")],
        env=stack_env, timeout=150,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 1, output  # p99 < 1ms breached: one failure fails the gate
    assert "run 1/2: FAIL (threshold)" in output
    assert "run 2/2: FAIL (threshold)" in output
    assert "passed 0/2 runs — repeat-steady [isolated]: exit codes 1 (2 runs) — exit 1" in output
    reports = tmp_path / "reports" / "repeat-steady-isolated"
    assert f"repeat: {reports / 'repeat.json'}" in output
    journals = [reports / f"run-{i}" / "journal.json" for i in (1, 2)]
    seeds = [json.loads(j.read_text())["seed"] for j in journals]
    assert seeds[0] != seeds[1], "without --seed each run draws its own"

    data = json.loads((reports / "repeat.json").read_text())
    assert data["exit_code"] == 1
    [figures] = data["scenarios"]
    assert (figures["runs"], figures["passes"], figures["pass_rate"]) == (2, 0, 0.0)
    assert (figures["exit_codes"], figures["seeds"]) == ([1, 1], seeds)
    assert figures["journals"] == [str(j) for j in journals]
    # the threshold that cannot hold comes first, breached in both runs
    breached, *others = figures["thresholds"]
    assert breached["expression"] == "p99 < 1ms"
    assert breached["breached"] == 2
    assert breached["min"] <= breached["median"] < 0
    assert breached["relative_min"] == breached["min"]  # a limit of 1 ms
    by_expression = {t["expression"]: t for t in others}
    p99 = by_expression["p99 < 5s"]
    assert len(p99["margins"]) == 2
    assert 0 < p99["min"] <= p99["median"] < 5000
    assert p99["relative_min"] == pytest.approx(p99["min"] / 5000)
    assert by_expression["error_rate == 0"]["margins"] == [0.0, 0.0]
    assert by_expression["count >= 10"]["min"] > 0

    [suite] = ET.parse(reports / "junit.xml").getroot().findall("testsuite")
    figures_of_suite = properties(suite)
    assert (figures_of_suite["runs"], figures_of_suite["passes"]) == ("2", "0")
    assert (figures_of_suite["pass_rate"], figures_of_suite["exit_codes"]) == ("0", "1,1")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    failure = cases["deposits.* steady: p99 < 1ms"].find("failure")
    assert failure is not None
    assert failure.get("message", "").startswith("breached in 2 of 2 runs (1, 2); run 1: p99 < 1ms")
    assert float(properties(cases["deposits.* steady: p99 < 1ms"])["margin_min"]) < 0
    margins = properties(cases["deposits.* steady: p99 < 5s"])
    assert float(margins["margin_min"]) == pytest.approx(p99["min"], rel=1e-5)
    assert float(margins["margin_median"]) == pytest.approx(p99["median"], rel=1e-5)
    out = cases["deposits.* steady: p99 < 5s"].find("system-out")
    assert out is not None
    assert (out.text or "").startswith("margin over 2 runs: min ")
