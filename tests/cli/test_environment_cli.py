"""Every variable the docs tell a user to set, set at once: every `harness` command works.

The README's distributed-load recipe sets ``HARNESS_ADMIN_TOKEN`` and ``HARNESS_MIX`` for
Locust; every `harness` command in that shell used to stop at them as unknown variables.
The load's variables set by hand must not change a scenario's run either: a scenario says
everything about its load.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from isolation_harness.chaos.stack import postgres, toxiproxy_server
from isolation_harness.chaos.stack.state import StateStore
from isolation_harness.topology.environment import VARIABLES
from isolation_harness.topology.ports import LOOPBACK, free_port
from tests.cli.conftest import HARNESS
from tests.plugins import commands
from tests.plugins.pg_cluster import cluster_folder
from tests.plugins.preflight import test_settings

ROOT = Path(__file__).resolve().parents[2]

SHORT = """\
name: short
description: A short run with every variable of the docs set.
load: {users: 4, spawn_rate: 4, mix: {deposits: 1, wallet: 1}}
timeline:
  - {phase: baseline, duration: 2s}
thresholds: none
invariants: none
"""


def readme_variables() -> set[str]:
    text = (ROOT / "README.md").read_text()
    return set(re.findall(r"\b(?:HARNESS_[A-Z_]*[A-Z]|TOXIPROXY_(?:URL|SERVER))\b", text))


@dataclass
class Shell:
    """A user's shell with every variable the docs mention set, and ``harness`` run in it."""

    env: dict[str, str]
    state_dir: Path
    user_samples: Path
    scenario: Path

    def harness(self, *args: str) -> str:
        result = commands.run([HARNESS, *args], env=self.env, timeout=180)
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"harness {' '.join(args)}:\n{output}"
        assert "unknown variable" not in output
        return output


@pytest.fixture
def shell(
    fresh_cluster: postgres.LocalCluster, toxiproxy_url: str, tmp_path: Path
) -> Iterator[Shell]:
    settings = test_settings()
    binary = toxiproxy_server.find_binary(settings)
    assert binary is not None
    state_dir = cluster_folder("harness-test-env-")
    user_samples = tmp_path / "samples-by-hand"
    mentioned = {
        "HARNESS_STATE_DIR": str(state_dir),
        "HARNESS_TOOLS_DIR": str(settings.tools_dir),
        "HARNESS_PG_DSN": fresh_cluster.dsn(),
        "HARNESS_PG_BIN": str(postgres.find_bin_dir(settings.pg_bin)),
        "HARNESS_PG_PORT": str(free_port()),
        "HARNESS_PG_FSYNC": "off",
        "HARNESS_PG_MAX_CONNECTIONS": "500",
        "HARNESS_TOXIPROXY_PORT": str(free_port()),
        "HARNESS_APP_PORT": str(free_port()),
        "HARNESS_APP_WORKERS": "1",
        "HARNESS_APP_VARIANT": "isolated",
        "HARNESS_APP_SERVICE_TIMEOUT": "4",
        "TOXIPROXY_URL": toxiproxy_url,
        "TOXIPROXY_SERVER": str(binary.path),
        # the load's: as a user who ran Locust by hand in this shell left them
        "HARNESS_ADMIN_TOKEN": "a-token-of-another-app",
        "HARNESS_MIX": "swap=1",
        "HARNESS_SEED": "7",
        "HARNESS_THINK_TIME": "0.1,0.3",
        "HARNESS_PAYMENTS_URL": f"http://{LOOPBACK}:1",
        "HARNESS_SAMPLES_DIR": str(user_samples),
    }
    assert set(mentioned) == readme_variables() == {v.name for v in VARIABLES}
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "TOXIPROXY_"))}
    scenario = tmp_path / "short.yaml"
    scenario.write_text(SHORT)
    found = Shell({**clean, **mentioned, "PYTHONUNBUFFERED": "1"}, state_dir, user_samples,
                  scenario)  # fmt: skip
    try:
        yield found
    finally:
        commands.run([HARNESS, "down"], env=found.env, timeout=120)
        shutil.rmtree(state_dir, ignore_errors=True)


def test_every_stack_command_runs_with_every_variable_of_the_readme_set(
    shell: Shell, tmp_path: Path
) -> None:
    harness, env, reports = shell.harness, shell.env, tmp_path / "reports"
    harness("validate", str(shell.scenario))
    harness("install-toxiproxy")
    harness("up")
    state = StateStore(shell.state_dir).load()
    assert state is not None
    assert state.app is not None
    assert state.postgres is not None
    assert state.toxiproxy is not None
    assert (state.postgres.kind, state.toxiproxy.kind) == ("external", "external")
    # the user now points the load's variables at this stack, as the README says
    env["HARNESS_ADMIN_TOKEN"] = state.app.admin_token
    env["HARNESS_PAYMENTS_URL"] = f"http://{LOOPBACK}:{state.links['payments'].listen_port}"
    harness("status")

    loaded = harness("load", "--users", "2", "--duration", "3s", "--json", str(tmp_path / "l.json"),
                     "--no-report")  # fmt: skip
    assert "(swap=1)" in loaded  # HARNESS_MIX is the default of --mix
    groups = set(json.loads((tmp_path / "l.json").read_text())["groups"])
    assert groups & {"swap.quote", "swap.execute"}, groups

    harness("run", str(shell.scenario), "--reuse", "--reports", str(reports))
    journal = json.loads((reports / "short-isolated" / "journal.json").read_text())
    ran = {group for phase in journal["stats"].values() for group in phase}
    assert not any(g.startswith("swap.") for g in ran), ran  # HARNESS_MIX left out
    demo = harness("demo", "--link", "pg_wallet", "--cut", "1")  # on the running stack
    assert "PASS" in demo
    harness("down")
    assert not shell.user_samples.exists()  # every run keeps its samples in its own folder


def test_a_suite_runs_with_every_variable_of_the_readme_set(shell: Shell, tmp_path: Path) -> None:
    """On its own throw-away stacks (beside the other test's, on another worker)."""
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "short.yaml").write_text(SHORT)
    shell.harness("suite", str(suite), "--reports", str(tmp_path / "suite-reports"))
    journal = json.loads((tmp_path / "suite-reports" / "short-isolated" / "journal.json")
                         .read_text())  # fmt: skip
    ran = {group for phase in journal["stats"].values() for group in phase}
    assert ran
    assert not any(g.startswith("swap.") for g in ran), ran  # HARNESS_MIX left out
    assert not shell.user_samples.exists()
