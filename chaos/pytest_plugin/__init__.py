"""The harness's pytest plugin, registered by the package's ``pytest11`` entry point: any
project that installs the harness has it, with no ``conftest.py`` to copy.

- **Scenario files are tests.** Each YAML file under a scenario folder is one item (marker
  ``scenario``), run by the harness on its own stack and failed with what its verdict
  says; CI gates on the exit code or the JUnit file (``--junitxml``). Scenario folders are
  those named by ``--scenarios PATH`` (which also runs them: ``pytest --scenarios
  scenarios/``, or beside named tests) and by the ini option ``harness_scenarios``. Other
  YAML files are never collected. ``--scenario-variant isolated|legacy`` runs every
  scenario against that design, ``--scenario-reports DIR`` keeps the journals. With xdist,
  the scenarios take turns on the machine (:mod:`.turns`).
- **Fixtures for a running stack** (:mod:`.fixtures`): ``harness_stack``,
  ``harness_app_url``, ``harness_admin_token``, ``harness_user`` (a factory),
  ``harness_toxiproxy_url``, ``toxiproxy`` (toxiproxy-python's client) and
  ``harness_fault`` (a fault that is always reverted, then the stack checked for residue).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from isolation_harness.chaos.pytest_plugin import turns
from isolation_harness.chaos.pytest_plugin.fixtures import (
    FaultLeftBehind,
    HarnessUser,
    harness_admin_token,
    harness_app_url,
    harness_fault,
    harness_stack,
    harness_toxiproxy_url,
    harness_user,
    toxiproxy_client,
)
from isolation_harness.chaos.pytest_plugin.items import ScenarioFailed, ScenarioFile, ScenarioItem
from isolation_harness.topology.services import VARIANTS

__all__ = [
    "FaultLeftBehind",
    "HarnessUser",
    "ScenarioFailed",
    "ScenarioFile",
    "ScenarioItem",
    "harness_admin_token",
    "harness_app_url",
    "harness_fault",
    "harness_stack",
    "harness_toxiproxy_url",
    "harness_user",
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_configure",
    "pytest_unconfigure",
    "toxiproxy_client",
]

#: the folders whose YAML files are scenarios, resolved
FOLDERS = pytest.StashKey[tuple[Path, ...]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness scenarios")
    group.addoption("--scenarios", action="append", default=[], metavar="PATH",
                    help="run the scenario files of this folder or file as tests")  # fmt: skip
    group.addoption("--scenario-variant", choices=VARIANTS, default=None,
                    help="run every scenario against this design")  # fmt: skip
    group.addoption("--scenario-reports", default="reports", help="folder for journals")
    parser.addini("harness_scenarios", type="paths", default=[],
                  help="folders whose YAML files are harness scenarios")  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario: a chaos scenario file run by the harness")
    named = [Path(p) for p in config.getoption("--scenarios")]
    for path in named:
        if not path.exists():
            raise pytest.UsageError(f"--scenarios {path}: no such file or folder")
    ini: list[Path] = config.getini("harness_scenarios")
    config.stash[FOLDERS] = tuple(p.resolve() for p in [*ini, *named])
    if named:
        given = [str(p) for p in named]
        if config.args_source == pytest.Config.ArgsSource.ARGS:
            config.args.extend(given)  # beside the tests named on the command line
        else:  # instead of the default folders (testpaths, or where pytest was started)
            config.args[:] = given
    turns.start(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    turns.end(config)


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.File | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    resolved = file_path.resolve()
    folders = parent.config.stash.get(FOLDERS, ())
    if not any(resolved == f or resolved.is_relative_to(f) for f in folders):
        return None
    found: pytest.File = ScenarioFile.from_parent(parent, path=file_path)
    return found
