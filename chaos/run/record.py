"""The record of one run: what the runner did and saw, and when, for the judge and the reports."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isolation_harness.chaos.judge.evidence import Limits, PhaseRecord
from isolation_harness.chaos.judge.verdicts import Outcome
from isolation_harness.chaos.scenario.model import Scenario

#: the steps of a run, as :meth:`RunRecord.lap` records them
STEPS = ("stack_up", "ramp", "phases", "load_stop", "readiness", "checks", "stack_down")


@dataclass
class RunRecord:
    """Everything that happened, for the journal and the verdicts."""

    scenario: Scenario
    source: Path | None
    seed: int
    started_at: float = 0.0
    ended_at: float = 0.0
    phases: list[PhaseRecord] = field(default_factory=list)
    server: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, dict[str, dict[str, object]]] = field(default_factory=dict)
    limits: Limits | None = None
    residue: list[str] = field(default_factory=list)
    recovered_after: float | None = None
    saturated: bool = False
    samples: int = 0
    #: the money-moving requests of the load, by outcome (acknowledged, failed, indeterminate)
    operations: dict[str, int] = field(default_factory=dict)
    #: the requests over time, per group (:func:`load.series.time_series`)
    series: dict[str, Any] = field(default_factory=dict)
    outcome: Outcome = field(default_factory=Outcome)
    interrupted: bool = False
    versions: dict[str, str] = field(default_factory=dict)
    #: seconds each step of the run took, in the order of :data:`STEPS` ("phases": the
    #: timeline, judged; every other step is a fixed cost)
    steps: dict[str, float] = field(default_factory=dict)

    def lap(self, step: str) -> None:
        """Close ``step``: the seconds since the previous step ended (or the run started)."""
        now = time.time()
        self.steps[step] = now - (self.started_at + sum(self.steps.values()))

    @property
    def wall_seconds(self) -> float:
        return max(0.0, self.ended_at - self.started_at)

    @property
    def judged_seconds(self) -> float:
        """The scenario's phases (those that ran, if the run stopped early)."""
        ran = sum(max(0.0, phase.end - phase.start) for phase in self.phases)
        return min(self.scenario.total_duration, ran)

    @property
    def fixed_cost(self) -> float:
        """The run's wall time beyond its judged phases: what one more scenario costs."""
        return self.wall_seconds - self.judged_seconds
