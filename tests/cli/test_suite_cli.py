"""`harness suite --jobs N`: several scenarios at once, each on its own stack; first with a
stand-in runner (the order they start in, the order they are reported in), then as a user
runs it, against real stacks."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from isolation_harness.chaos.cli import commands as cli
from isolation_harness.chaos.cli import runs as scenario_command
from isolation_harness.chaos.errors import EXIT_HARNESS_ERROR
from isolation_harness.chaos.run.record import RunRecord
from isolation_harness.chaos.scenario.model import Scenario
from tests.plugins import commands

HARNESS = str(Path(sys.executable).with_name("harness"))


def steady(name: str, seconds: int, thresholds: str) -> str:
    return f"""\
name: {name}
description: Deposits with nothing broken.
load: {{users: 8, spawn_rate: 8, mix: {{deposits: 1}}}}
timeline:
  - {{phase: steady, duration: {seconds}s}}
thresholds:
  "deposits.*":
    steady: [{thresholds}]
invariants: none
"""


def suite_names(junit: Path) -> list[str]:
    return [s.get("name", "") for s in ET.parse(junit).getroot().findall("testsuite")]


@pytest.mark.light
def test_the_longest_start_first_and_the_reports_keep_the_files_order(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    for name, seconds in (("a-short", 2), ("b-long", 9), ("c-middle", 5)):
        (gate / f"{name}.yaml").write_text(steady(name, seconds, '"error_rate == 0"'))
    started: list[str] = []
    lock = threading.Lock()
    # The two longest hold their places until both have started: a place given to the
    # shortest meanwhile would have it start before one of them.
    both = threading.Barrier(2, timeout=30)

    async def stand_in(scenario: Scenario, *_: Any, **__: Any) -> RunRecord:
        with lock:
            started.append(scenario.name)
        if scenario.name != "a-short":
            both.wait()
        record = RunRecord(scenario, None, 1, started_at=time.time())
        record.ended_at = record.started_at + 1.0
        return record

    monkeypatch.setattr(scenario_command, "run_scenario", stand_in)
    reports = tmp_path / "reports"
    with pytest.raises(SystemExit) as exited:
        cli.main(["suite", str(gate), "--jobs", "2", "--reports", str(reports)])
    assert exited.value.code == 0
    # two places: the two longest take them (in either order), the shortest comes last
    assert set(started[:2]) == {"b-long", "c-middle"}
    assert started[2] == "a-short"
    names = ["a-short [isolated]", "b-long [isolated]", "c-middle [isolated]"]
    assert suite_names(reports / "junit.xml") == names
    assert "wall time: " in capsys.readouterr().out


@pytest.mark.light
def test_jobs_must_be_at_least_one(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(steady("a", 2, '"error_rate == 0"'))
    with pytest.raises(SystemExit) as exited:
        cli.main(["suite", str(tmp_path), "--jobs", "0", "--reports", str(tmp_path / "r")])
    assert exited.value.code == EXIT_HARNESS_ERROR
    assert "--jobs" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_two_jobs_run_both_scenarios_at_once_and_exit_with_the_worst(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    (gate / "a.yaml").write_text(steady("jobs-a", 2, '"error_rate == 0", "count >= 10"'))
    (gate / "b.yaml").write_text(steady("jobs-b", 2, '"error_rate == 0", "p99 < 1ms"'))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "TOXIPROXY_"))}
    env["HARNESS_APP_WORKERS"] = "1"
    reports = tmp_path / "reports"
    result = commands.run(
        [HARNESS, "suite", str(gate), "--jobs", "2", "--reports", str(reports)],
        env=env, timeout=240,
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 1, out  # p99 < 1ms cannot hold: the worst is a breach
    a, b = (json.loads((reports / f"jobs-{x}-isolated" / "journal.json").read_text())
            for x in "ab")  # fmt: skip
    assert (a["exit_code"], b["exit_code"]) == (0, 1), out
    # at once: each started before the other ended
    assert a["started_at"] < b["ended_at"], out
    assert b["started_at"] < a["ended_at"], out
    for journal in (a, b):
        assert journal["wall_seconds"] == pytest.approx(journal["ended_at"] - journal["started_at"])
        assert 0 < journal["fixed_cost_seconds"] < journal["wall_seconds"]
    assert suite_names(reports / "junit.xml") == ["jobs-a [isolated]", "jobs-b [isolated]"]
    # each run's lines together: its header, its summary, its journal
    for name in ("jobs-a", "jobs-b"):
        block = out[out.index(f"{name} [isolated] — ") : out.index(f"journal: {reports / name}")]
        assert "jobs-" not in block.replace(name, ""), block
        assert "time: " in block
    assert "wall time: " in out
