"""Scenario files as pytest items: one item per file, run by the harness, failed with what
its verdict says."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from isolation_harness.chaos.errors import HarnessError
from isolation_harness.chaos.interruption import RunInterrupted
from isolation_harness.chaos.pytest_plugin.turns import TURNS
from isolation_harness.chaos.report.html import write_run_report
from isolation_harness.chaos.report.journal import write_journal
from isolation_harness.chaos.run.record import RunRecord
from isolation_harness.chaos.run.runner import run_scenario
from isolation_harness.chaos.scenario.loader import load_scenario
from isolation_harness.chaos.scenario.model import Scenario
from isolation_harness.chaos.stack.settings import Settings


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
        report = write_run_report(target, data)
        self.user_properties.append(("report", str(report)))
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
            report = dict(self.user_properties).get("report")
            lines += [f"  report: {report}"] if report else []
            return "\n".join(lines)
        if isinstance(excinfo.value, HarnessError):
            return f"harness error: {excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario {self.name}"
