"""`pytest scenarios/`: each scenario file is a pytest item that CI can gate on."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.plugins import commands
from tests.plugins.polling import wait_until
from tests.plugins.processes import descendants
from tests.plugins.run_folders import assert_no_litter, postmaster, running_stack

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


def pytest_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "PYTEST_XDIST"))}
    env["HARNESS_APP_WORKERS"] = "1"
    return env


def pytest_run(*args: str) -> subprocess.CompletedProcess[str]:
    return commands.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=ROOT, env=pytest_env(), timeout=300,
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


@pytest.mark.light
def test_only_the_scenario_folders_yaml_files_are_tests(tmp_path: Path) -> None:
    """Other YAML files (a CI file, a test's data) are never collected; a folder named by
    --scenarios that does not exist is a usage error, not an empty run."""
    gate, data = tmp_path / "gate", tmp_path / "data"
    gate.mkdir()
    data.mkdir()
    (gate / "tiny.yaml").write_text(TINY)
    (data / "not-a-scenario.yaml").write_text("jobs: {build: {runs-on: x}}\n")
    both = pytest_run("--collect-only", "-q", f"--scenarios={gate}", str(data))
    assert both.returncode == 0, both.stdout + both.stderr
    assert "tiny.yaml::tiny-gate[isolated]" in both.stdout
    assert "not-a-scenario" not in both.stdout
    missing = pytest_run("--collect-only", "-q", f"--scenarios={tmp_path / 'nowhere'}")
    assert missing.returncode == pytest.ExitCode.USAGE_ERROR
    assert "no such file or folder" in missing.stderr


BREACHED = """\
name: breached-gate
description: A scenario no real run can pass, for the plugin test.
load: {users: 4, spawn_rate: 4, mix: {deposits: 1}}
timeline:
  - {phase: steady, duration: 2s}
thresholds:
  "deposits.*":
    steady: ["p99 < 0.001ms"]
"""


@pytest.mark.light
def test_the_variant_option_makes_every_item_the_chosen_design(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    (gate / "tiny.yaml").write_text(TINY)
    legacy = pytest_run("--collect-only", "-q", "--scenario-variant=legacy", f"--scenarios={gate}")
    assert legacy.returncode == 0, legacy.stdout + legacy.stderr
    assert "tiny.yaml::tiny-gate[legacy]" in legacy.stdout
    isolated = pytest_run("--collect-only", "-q", f"--scenarios={gate}")
    assert "tiny.yaml::tiny-gate[isolated]" in isolated.stdout


def test_a_scenario_runs_as_a_test_and_a_breach_fails_it(tmp_path: Path) -> None:
    """One session: a scenario that passes is a passed test with its journal, one whose
    threshold is breached a failed one that says what was breached."""
    gate = tmp_path / "gate"
    gate.mkdir()
    (gate / "tiny.yaml").write_text(TINY)
    (gate / "breached.yaml").write_text(BREACHED)
    junit = tmp_path / "junit.xml"
    reports = tmp_path / "reports"
    session = pytest_run(
        f"--scenarios={gate}", f"--junitxml={junit}", f"--scenario-reports={reports}"
    )
    output = session.stdout + session.stderr
    assert session.returncode == 1, output
    assert "1 failed, 1 passed" in session.stdout, output
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {"tiny-gate[isolated]", "breached-gate[isolated]"}
    assert cases["tiny-gate[isolated]"].find("failure") is None
    failure = cases["breached-gate[isolated]"].find("failure")
    assert failure is not None
    assert "FAIL (threshold) (exit 1, expect pass)" in (failure.text or ""), failure.text
    assert "threshold deposits.* / steady: p99 < 0.001ms" in (failure.text or ""), failure.text
    assert "replay: harness run --replay" in (failure.text or "")
    breached = json.loads((reports / "breached-gate-isolated" / "journal.json").read_text())
    assert breached["exit_code"] == 1
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


TIMED_CONFTEST = """\
import asyncio, json, os, time

from isolation_harness.chaos.pytest_plugin import items


async def timed(scenario, settings, source=None):
    \"\"\"Stands for a run: only when it went on matters here.\"\"\"
    start = time.time()
    await asyncio.sleep(1.5)
    line = {"name": scenario.name, "pid": os.getpid(), "start": start, "end": time.time()}
    with open(os.environ["TURNS_LOG"], "a") as log:
        log.write(json.dumps(line) + "\\n")


items.run_scenario = timed
items.ScenarioItem._journal = lambda self, record: {"exit_code": 0}
"""
SHORT = """\
name: {name}
load: {{users: 1, spawn_rate: 1, mix: {{deposits: 1}}}}
timeline: [{{phase: steady, duration: 1s}}]
thresholds: none
alone: {alone}
"""


@pytest.mark.light
def test_under_xdist_a_scenario_alone_runs_with_no_other_beside_it(tmp_path: Path) -> None:
    """The workers take turns through the plugin's lock files: the scenario that needs the
    machine to itself runs with no other scenario going on, and the controller removes the
    lock files at the end. The runs themselves are stand-ins that only keep time."""
    gate, temp = tmp_path / "gate", tmp_path / "tmp"
    gate.mkdir()
    temp.mkdir()
    (gate / "conftest.py").write_text(TIMED_CONFTEST)
    for name in ("one", "two", "three", "four"):
        alone = "true" if name == "three" else "false"
        (gate / f"{name}.yaml").write_text(SHORT.format(name=name, alone=alone))
    log = tmp_path / "turns.jsonl"
    result = commands.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2",
         f"--scenarios={gate}"],
        cwd=ROOT, env={**pytest_env(), "TURNS_LOG": str(log), "TMPDIR": str(temp)},
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    runs = {line["name"]: line for line in map(json.loads, log.read_text().splitlines())}
    assert set(runs) == {"one", "two", "three", "four"}
    assert len({run["pid"] for run in runs.values()}) == 2  # both workers ran scenarios
    alone = runs.pop("three")
    beside = [n for n, r in runs.items() if r["start"] < alone["end"] and alone["start"] < r["end"]]
    assert not beside, f"ran beside the scenario alone: {beside}"
    assert not list(temp.glob("harness-turns-*")), "the turns' lock files were left behind"


LONG = """\
name: {name}
description: A long scenario, for Ctrl-C to stop in the middle.
load: {{users: 4, spawn_rate: 4, mix: {{deposits: 1, wallet: 1}}}}
timeline:
  - {{phase: baseline, duration: 60s}}
thresholds: none
invariants: none
"""


@pytest.mark.parametrize("xdist", [[], ["-n", "1"]], ids=["plain", "xdist"])
def test_ctrl_c_ends_the_session_after_the_run_stops_its_stack(
    tmp_path: Path, temp_root: Path, xdist: list[str]
) -> None:
    """Ctrl-C during a scenario: the run stops its stack and the session ends there, with
    nothing left running and no folder left behind. It used to go on to the next scenario's
    stack; under xdist, the controller kills a worker 10 s after Ctrl-C, in the middle of its
    run's cleanup on a busy machine, and the run's warden finishes it."""
    gate = tmp_path / "gate"
    gate.mkdir()
    for name in ("first", "second"):
        (gate / f"{name}.yaml").write_text(LONG.format(name=name))
    reports, log = tmp_path / "reports", tmp_path / "pytest.log"
    with log.open("w") as out:
        session = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *xdist,
             f"--scenarios={gate}", f"--scenario-reports={reports}"],
            cwd=ROOT, env={**pytest_env(), "TMPDIR": str(temp_root)}, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        state = wait_until(lambda: running_stack(temp_root), timeout=90, interval=0.2)
        time.sleep(1)  # the load is running
        spawned = [*descendants(session.pid), postmaster(state)]
        os.killpg(session.pid, signal.SIGINT)  # Ctrl-C, as a terminal sends it
        started = set()  # the runs' state folders, which a run deletes when it ends
        deadline = time.monotonic() + 90
        while session.poll() is None and time.monotonic() < deadline:
            started |= {folder.name for folder in temp_root.glob("harness-run-*")}
            time.sleep(0.05)
    finally:
        if session.poll() is None:
            os.killpg(session.pid, signal.SIGKILL)
            session.wait()
    output = log.read_text()
    assert session.returncode == pytest.ExitCode.INTERRUPTED, output
    assert not [name for name in started if "-second-" in name], "a run started after Ctrl-C"
    assert not (reports / "second-isolated").exists(), output
    # the run's own cleanup, or its warden's once xdist has killed the worker
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not [p for p in spawned if p.alive()], timeout=60, interval=0.2)
    assert not [p.pid for p in spawned if p.alive()], "a process of the run survived"
    assert_no_litter(temp_root)
    journal = reports / "first-isolated" / "journal.json"
    if not xdist:  # a killed worker writes no journal
        assert json.loads(journal.read_text())["interrupted"] is True, output
