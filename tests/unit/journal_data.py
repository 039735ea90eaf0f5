"""Journals of made-up runs, as read back from their files: for the reports' tests."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from isolation_harness.chaos.judge.evidence import Evidence
from isolation_harness.chaos.judge.judgement import judge
from isolation_harness.chaos.report.journal import journal
from isolation_harness.chaos.run.record import RunRecord
from tests.unit.judge_data import correct_run, evidence, scenario

#: the headline story, with a latency threshold on deposits during the outage
STORY = scenario(thresholds={"deposits.*": {"outage": ["error_rate == 0", "p99 < 1s"]}})


def journal_of(run: Evidence, seed: int) -> dict[str, Any]:
    """The journal of a run judged on ``run``."""
    record = RunRecord(run.scenario, None, seed, started_at=100.0, ended_at=130.0)
    record.outcome = judge(run)
    return json.loads(json.dumps(journal(record), default=str))


def passing(seed: int = 1) -> dict[str, Any]:
    """A run that passes, deposits answering in about 20 ms."""
    return journal_of(correct_run(STORY), seed)


def slow_deposits(seed: int = 2) -> dict[str, Any]:
    """Deposits answer in 1.5 s during the outage: ``p99 < 1s`` breached by 500 ms."""
    run = correct_run(STORY)
    samples = [
        dataclasses.replace(s, latency_ms=1500.0)
        if s.name.startswith("deposits.") and 10 <= s.start < 20
        else s
        for s in run.samples
    ]
    return journal_of(evidence(STORY, samples), seed)
