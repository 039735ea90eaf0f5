"""`pytest scenarios/`: each scenario file is a pytest item that CI can gate on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.plugins import commands

ROOT = Path(__file__).resolve().parents[2]
TINY = """\
name: tiny-gate
description: A short scenario for the plugin test.
load: {users: 12, spawn_rate: 12, mix: {deposits: 1, p2p: 1}}
timeline:
  - {phase: baseline, duration: 3s}
  - phase: outage
    duration: 4s
    faults: [{type: service, service: p2p, mode: raise}]
thresholds:
  "deposits.*":
    outage: ["error_rate == 0", "p99 < 1s"]
# the legacy run's starved app is never ready again: 1 s to say so, not the default 15 s
ready_within: 1s
"""


def pytest_run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "PYTEST_XDIST"))}
    env["HARNESS_APP_WORKERS"] = "1"
    return commands.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=ROOT, env=env, timeout=300,
    )  # fmt: skip


@pytest.mark.light
def test_every_scenario_file_is_collected_with_its_marker() -> None:
    result = pytest_run("--collect-only", "-q", "-m", "scenario", "scenarios/")
    assert result.returncode == 0, result.stdout + result.stderr
    files = sorted((ROOT / "scenarios").rglob("*.yaml"))
    collected = [line for line in result.stdout.splitlines() if ".yaml::" in line]
    assert len(collected) == len(files)
    for path in files:
        variant = "legacy" if path.parent.name == "legacy" else "isolated"
        item = f"{path.stem}.yaml::{path.stem}[{variant}]"
        assert any(item in line for line in collected), item


def test_a_scenario_runs_as_a_test_both_ways(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    shutil.copy(ROOT / "scenarios" / "conftest.py", gate)
    (gate / "tiny.yaml").write_text(TINY)
    junit = tmp_path / "junit.xml"
    reports = tmp_path / "reports"
    passed = pytest_run(str(gate), f"--junitxml={junit}", f"--scenario-reports={reports}")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "1 passed" in passed.stdout
    case = ET.parse(junit).getroot().find(".//testcase")
    assert case is not None
    assert case.get("name") == "tiny-gate[isolated]"
    journal = json.loads((reports / "tiny-gate-isolated" / "journal.json").read_text())
    # the journal carries the blast radius, the fault's timings and the oracle's counts
    [row] = journal["blast_radius"]
    assert row["targets"] == ["p2p"]
    assert row["cells"]["p2p"]["named"] == ["p2p"]
    assert not row["cells"]["deposits"]["hit"]
    [fault] = journal["faults"]
    assert fault["effective"]
    assert fault["applied_at"] <= fault["effect_seen_at"] <= fault["reverted_at"]
    invariants = {i["name"]: i for i in journal["verdicts"]["invariants"]}
    counts = invariants["no_operation_lost"]["counts"]
    assert counts["checked"] > 0
    assert {"lost", "unexpected", "duplicated", "indeterminate"} <= set(counts)
    assert journal["limits"]["client_timeout"] > journal["limits"]["service_timeout"]

    failed = pytest_run(str(gate), "--scenario-variant=legacy", f"--scenario-reports={reports}")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    # P2P's failures leak the shared pool and deposits wait (and a payment finished
    # meanwhile may go uncredited: the old design loses money too, an invariant's failure)
    verdict = failed.stdout[-4000:]
    assert "FAIL (threshold)" in failed.stdout or "FAIL (invariant)" in failed.stdout, verdict
    assert "threshold deposits.* / outage" in failed.stdout, verdict
