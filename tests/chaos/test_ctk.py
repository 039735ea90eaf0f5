"""The Chaos Toolkit extension (``isolation_harness.chaos.ctk``) and the example experiment
of ``docs/ctk/``, run by the real ``chaos`` command (chaostoolkit, chaostoolkit-lib)
against a real stack: its steady state holds before and after P2P's link is cut, and the
variant that cuts deposits' own link deviates, as Chaos Toolkit reports it. Either way the
rollback reverts the fault and nothing is left on the stack.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from isolation_harness.chaos import ctk
from isolation_harness.chaos.errors import ConfigError
from isolation_harness.chaos.stack.settings import Settings
from isolation_harness.chaos.stack.throwaway import throwaway_stack
from tests.plugins.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]
CHAOS = ROOT / ".venv" / "bin" / "chaos"
EXAMPLES = ROOT / "docs" / "ctk"


@pytest.fixture(scope="module")
def state_dir() -> Iterator[Path]:
    """A running stack's state folder (as ``harness up`` leaves it)."""
    with throwaway_stack(Settings.from_env({}).with_overrides(app_workers=1)) as (own, _):
        yield own.state_dir


def chaos_run(experiment: Path, state_dir: Path, tmp_path: Path) -> tuple[int, dict[str, Any]]:
    journal = tmp_path / "journal.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    env["HARNESS_STATE_DIR"] = str(state_dir)
    done = subprocess.run(
        [str(CHAOS), "--no-version-check", "--no-log-file", "run",
         "--journal-path", str(journal), str(experiment)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert journal.exists(), done.stdout + done.stderr
    return done.returncode, json.loads(journal.read_text())


def outputs(journal: dict[str, Any], part: str) -> dict[str, Any]:
    return {run["activity"]["name"]: run for run in journal[part]}


def settled(state_dir: Path) -> None:
    """Every service ready again after the rollback (the pools reconnect on their own)."""
    configuration = {"harness_state_dir": str(state_dir)}
    wait_until(
        lambda: all(ctk.service_ready(s, configuration) for s in ("deposits", "p2p")),
        timeout=20,
        interval=0.2,
    )


def test_the_example_holds_its_steady_state_and_rolls_back(state_dir: Path, tmp_path: Path) -> None:
    code, journal = chaos_run(EXAMPLES / "experiment.json", state_dir, tmp_path)
    assert code == 0, json.dumps(journal, indent=1)[:4000]
    assert journal["status"] == "completed"
    assert journal["deviated"] is False
    assert journal["steady_states"]["before"]["steady_state_met"] is True
    assert journal["steady_states"]["after"]["steady_state_met"] is True
    method = outputs(journal, "run")
    assert method["cut-p2p-database-link"]["status"] == "succeeded"
    assert "pg_p2p" in method["cut-p2p-database-link"]["output"]
    assert method["p2p-not-ready-meanwhile"]["output"] is False  # the fault did act
    [rollback] = journal["rollbacks"]
    assert rollback["status"] == "succeeded"
    assert ctk.left_behind({"harness_state_dir": str(state_dir)}) == []
    settled(state_dir)


def test_the_deviating_variant_is_reported_and_still_rolled_back(
    state_dir: Path, tmp_path: Path
) -> None:
    code, journal = chaos_run(EXAMPLES / "experiment-deviates.json", state_dir, tmp_path)
    assert code == 1, json.dumps(journal, indent=1)[:4000]
    assert journal["deviated"] is True
    assert journal["steady_states"]["before"]["steady_state_met"] is True
    after = journal["steady_states"]["after"]
    assert after["steady_state_met"] is False
    failed = [p["activity"]["name"] for p in after["probes"] if not p["tolerance_met"]]
    assert failed == ["deposits-ready"]
    [rollback] = journal["rollbacks"]
    assert rollback["status"] == "succeeded"
    assert ctk.left_behind({"harness_state_dir": str(state_dir)}) == []
    settled(state_dir)


def test_a_fault_applied_twice_is_refused_and_a_revert_undoes_it(state_dir: Path) -> None:
    configuration = {"harness_state_dir": str(state_dir)}
    fault = {"type": "toxic", "link": "pg_swap", "toxic": "latency", "attributes": {"latency": 5}}
    assert "pg_swap" in ctk.apply_fault(fault, configuration)
    try:
        with pytest.raises(ConfigError, match="applied already"):
            ctk.apply_fault(fault, configuration)
        assert ctk.nothing_left_behind(configuration) is False
        [line] = ctk.left_behind(configuration)
        assert "pg_swap" in line
    finally:
        ctk.revert_fault(fault, configuration)
    assert ctk.nothing_left_behind(configuration) is True


def test_the_probes_say_what_they_cannot_check(state_dir: Path) -> None:
    configuration = {"harness_state_dir": str(state_dir)}
    found = ctk.invariants(configuration=configuration)
    assert [r["name"] for r in found] == list(ctk.PROBED)
    assert all(r["passed"] for r in found), found
    with pytest.raises(ConfigError, match="name them in a scenario"):
        ctk.invariants(["no_operation_lost"], configuration)
    with pytest.raises(ConfigError, match="unknown service"):
        ctk.service_ready("bank", configuration)


def test_without_a_stack_the_probe_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="harness up"):
        ctk.service_ready("deposits", {"harness_state_dir": str(tmp_path)})
