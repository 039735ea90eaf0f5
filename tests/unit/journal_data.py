"""Journals of made-up runs, as read back from their files: for the reports' tests."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from isolation_harness.chaos.judge.evidence import Evidence
from isolation_harness.chaos.judge.judgement import judge
from isolation_harness.chaos.report.journal import journal
from isolation_harness.chaos.run.record import RunRecord
from isolation_harness.load.series import time_series
from tests.unit.judge_data import correct_run, evidence, scenario, unavailable

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


def full_journal(run: Evidence, seed: int = 7) -> dict[str, Any]:
    """The journal of a run judged on ``run`` as the runner writes it: its phases, its
    requests over time, and the server's samples (pools and connections once a second)."""
    record = RunRecord(run.scenario, None, seed, started_at=-2.0, ended_at=33.0)
    record.phases = run.phases
    record.outcome = judge(run)
    stats = record.outcome.analysis.pop("stats", {})
    record.stats = {phase: {group: s.as_dict() for group, s in groups.items()}
                    for phase, groups in stats.items()}  # fmt: skip
    record.series = time_series(run.samples, origin=0.0)
    record.samples = len(run.samples)
    record.server = [
        {
            "at": float(t),
            "pools": {
                service: {"in_use": 2.0, "waiting": 5.0 if service == "p2p" and 10 <= t < 20
                          else 0.0, "size": 4.0}
                for service in ("deposits", "p2p", "wallet")
            },
            "connections": {"deposits": {"idle": 3}, "p2p": {"idle": 1, "active": 2}},
        }
        for t in range(0, 31)
    ]  # fmt: skip
    return json.loads(json.dumps(journal(record), default=str))


def deposits_hit(seed: int = 8) -> dict[str, Any]:
    """A broken build: during P2P's outage deposits fail too, with errors naming P2P (one
    shared pool): the blast radius reaches a group the fault was not aimed at."""
    run = correct_run(STORY)
    samples = [s for s in run.samples if not (s.name == "deposits.create" and 10 <= s.start < 20)]
    samples += unavailable("deposits.create", 10, 20, "p2p")
    return full_journal(evidence(STORY, samples), seed)
