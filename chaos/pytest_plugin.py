"""A pytest plugin: each scenario file is a test item (marker ``scenario``).

``pytest scenarios/`` then runs the release gate, and any CI that reads JUnit
(``pytest --junitxml``) can gate on it. Enabled by ``scenarios/conftest.py``; options:
``--scenario-variant isolated|legacy`` and ``--scenario-reports DIR``.

With xdist workers (``-n N``), the scenarios take turns on the machine
(:mod:`chaos.run.turns`): one that needs it to itself (``alone: true``) runs with no other
scenario beside it. The lock files live in a folder the controller makes and removes (a
controller that never loaded this plugin, because no folder named on its command line
holds its ``conftest.py``, leaves its workers without turns).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from isolation_harness.chaos.errors import HarnessError
from isolation_harness.chaos.interruption import RunInterrupted
from isolation_harness.chaos.report.journal import write_journal
from isolation_harness.chaos.run.record import RunRecord
from isolation_harness.chaos.run.runner import run_scenario
from isolation_harness.chaos.run.turns import MachineTurns
from isolation_harness.chaos.scenario.loader import load_scenario
from isolation_harness.chaos.scenario.model import Scenario
from isolation_harness.chaos.stack.settings import Settings
from isolation_harness.topology.services import VARIANTS


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness scenarios")
    group.addoption("--scenario-variant", choices=VARIANTS, default=None,
                    help="run every scenario against this design")  # fmt: skip
    group.addoption("--scenario-reports", default="reports", help="folder for journals")


#: the turns of this session's scenarios on the machine
TURNS = pytest.StashKey[MachineTurns]()
#: the key of ``workerinput`` that tells an xdist worker where the turns are taken
TURNS_INPUT = "harness_turns"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario: a chaos scenario file run by the harness")
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None:  # an xdist worker: its controller made the folder
        if TURNS_INPUT in workerinput:  # (not if the controller never loaded this plugin)
            config.stash[TURNS] = MachineTurns(Path(workerinput[TURNS_INPUT]))
        return
    folder = Path(tempfile.mkdtemp(prefix="harness-turns-"))
    config.stash[TURNS] = MachineTurns(folder / "machine.lock")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_TurnsToWorkers(config.stash[TURNS]))


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and TURNS in config.stash:
        shutil.rmtree(config.stash[TURNS].path.parent, ignore_errors=True)


class _TurnsToWorkers:
    """Tells each xdist worker where the turns are taken (xdist's own hook)."""

    def __init__(self, turns: MachineTurns) -> None:
        self.turns = turns

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[TURNS_INPUT] = str(self.turns.path)


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.File | None:
    if file_path.suffix in (".yaml", ".yml"):
        found: pytest.File = ScenarioFile.from_parent(parent, path=file_path)
        return found
    return None


class ScenarioFailed(Exception):
    """The run's verdict was not a pass."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data["result"])
        self.data = data


class ScenarioFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        scenario = load_scenario(self.path)  # a malformed file is a collection error
        variant = self.config.getoption("--scenario-variant")
        if variant:
            scenario = scenario.with_variant(variant)
        item = ScenarioItem.from_parent(self, name=f"{scenario.name}[{scenario.variant}]")
        item.scenario = scenario
        item.add_marker("scenario")
        yield item


class ScenarioItem(pytest.Item):
    scenario: Scenario

    def runtest(self) -> None:
        turns = self.config.stash.get(TURNS, None)
        turn = contextlib.nullcontext() if turns is None else turns.turn(alone=self.scenario.alone)
        try:
            with turn:
                record = asyncio.run(
                    run_scenario(self.scenario, Settings.from_env(os.environ), source=self.path)
                )
        except RunInterrupted as stopped:  # Ctrl-C: the journal says so, and the session ends
            self._journal(stopped.record)
            raise
        data = self._journal(record)
        if data["exit_code"] != 0:
            raise ScenarioFailed(data)

    def _journal(self, record: RunRecord) -> dict[str, Any]:
        reports = Path(self.config.getoption("--scenario-reports"))
        target = reports / f"{self.scenario.name}-{self.scenario.variant}" / "journal.json"
        data = write_journal(record, target)
        self.user_properties.append(("journal", str(target)))
        return data

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            data = excinfo.value.data
            verdicts = data["verdicts"]
            lines = [f"{data['result']} (exit {data['exit_code']}, expect {data['expect']})"]
            lines += [f"  threshold {t['group']} / {t['phase']}: {t['reason']}"
                      for t in verdicts["thresholds"] if not t["passed"]]  # fmt: skip
            lines += [f"  invariant {i['name']}: {'; '.join(i['violations'][:3])}"
                      for i in verdicts["invariants"] if not i["passed"]]  # fmt: skip
            lines += [f"  invalid: {v['name']}: {v['detail']}"
                      for v in verdicts["validity"] if not v["passed"]]  # fmt: skip
            lines += [f"  harness error: {e}" for e in verdicts["harness_errors"]]
            lines += [f"  replay: {data['replay']}"] if data.get("replay") else []
            return "\n".join(lines)
        if isinstance(excinfo.value, HarnessError):
            return f"harness error: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario {self.name}"
