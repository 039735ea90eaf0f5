"""The judge: evidence in, verdicts out. Pure: it starts, asks and waits for nothing.

    outcome = judge(evidence)       # chaos.judge.evidence.Evidence -> Outcome

What it judges, in order (each module documents its own rules):

1. the scenario's thresholds, per request group and phase or window (:mod:`.windows`,
   :mod:`chaos.metrics`, :mod:`chaos.scenario.thresholds`);
2. isolation in every faulted phase (:mod:`.isolation`), and the blast radius;
3. that no failure goes unjudged: a request group that failed in a phase where neither a
   threshold nor isolation judges it is a breach;
4. validity: each fault's effect (:mod:`.effect`), enough samples under a pass, the load
   generator not saturated, the machine not saturated in any phase (and, for a scenario that
   needs it, to itself: :mod:`.saturation`),
   the load achieved as planned (:mod:`.delivery`), each invariant having checked at least
   its floor;
5. what ``expect: {fail: [...]}`` named (:mod:`.expectation`).

*Why one module of this length:* it is the order of judgement above and the questions it
asks of one run's evidence cut by phase (:class:`_Court`); each rule lives in the module
named beside it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from isolation_harness.chaos.judge.delivery import pace_check, users_check
from isolation_harness.chaos.judge.effect import (
    Effect,
    database_effect,
    held_effect,
    provider_effect,
    target_effect,
)
from isolation_harness.chaos.judge.evidence import Evidence, FaultRecord, PhaseRecord, ServerSample
from isolation_harness.chaos.judge.expectation import judge_expectations
from isolation_harness.chaos.judge.isolation import (
    blast_radius,
    by_service,
    judge_isolation,
    targets_of,
)
from isolation_harness.chaos.judge.saturation import alone_check, machine_check
from isolation_harness.chaos.judge.verdicts import Outcome, ThresholdVerdict, ValidityCheck
from isolation_harness.chaos.judge.windows import assign, select
from isolation_harness.chaos.metrics import GroupWindow, services_of
from isolation_harness.chaos.scenario.model import Scenario
from isolation_harness.chaos.scenario.thresholds import evaluate
from isolation_harness.chaos.scenario.windows import Window
from isolation_harness.load.kinds import requests_of, service_of
from isolation_harness.load.samples import Sample
from isolation_harness.load.stats import by_group

#: fewer requests than this in a judged group and phase make a pass meaningless
MIN_SAMPLES = 10
#: server samples are taken about this often (seconds): a window's counters are read from
#: the sample just before it to the one just after
SERVER_INTERVAL = 1.0


def judge(evidence: Evidence) -> Outcome:
    """Every verdict of a run (see the module docstring)."""
    scenario = evidence.scenario
    phases = [p for p in evidence.phases if p.end > p.start]
    by_phase = assign(evidence.samples, phases)
    court = _Court(evidence, phases, by_phase)
    outcome = Outcome(invariants=list(evidence.invariants))
    outcome.thresholds = court.thresholds()
    radius = []
    for phase in phases:
        if not phase.faulted:
            continue
        baseline = court.baseline_samples(phase)
        radius.append(blast_radius(phase, by_phase[phase.name], baseline))
        if scenario.phase(phase.name).isolation:
            outcome.thresholds += judge_isolation(
                scenario, phase, by_phase[phase.name], court.expected(phase), evidence.limits
            )
    outcome.thresholds += court.unjudged_failures()
    if evidence.recovered_after is None:
        outcome.thresholds.append(
            ThresholdVerdict(
                "*",
                "after",
                f"ready within {scenario.ready_within:g}s",
                False,
                None,
                scenario.ready_within,
                0,
                "the app's services were not all ready after the last fault was reverted",
                op="<=",
            )
        )
    timings, effects = court.faults()
    machine = {p.name: machine_check(p, evidence.server) for p in phases}
    checks = [check for check, _ in machine.values()]
    if scenario.alone:
        checks += [alone_check(p, evidence.server) for p in phases]
    outcome.validity = court.validity(outcome.thresholds, effects, checks)
    outcome.expectations = judge_expectations(
        scenario.expected_failures, outcome.thresholds, outcome.invariants
    )
    outcome.analysis = {
        "blast_radius": radius,
        "faults": timings,
        "machine": {name: figures for name, (_, figures) in machine.items()},
        "stats": {
            name: by_group(samples, court.seconds(name)) for name, samples in by_phase.items()
        },
    }
    return outcome


class _Court:
    """The samples of a run, cut by phase, with the questions the verdicts ask of them."""

    def __init__(
        self,
        evidence: Evidence,
        phases: Sequence[PhaseRecord],
        by_phase: Mapping[str, list[Sample]],
    ) -> None:
        self.evidence = evidence
        self.scenario: Scenario = evidence.scenario
        self.phases = phases
        self.by_phase = by_phase
        self.records = {p.name: p for p in phases}
        self.requests = requests_of(tuple(self.scenario.load.mix))

    def seconds(self, phase: str) -> float:
        record = self.records[phase]
        return max(record.end - record.start, 1e-9)

    def baseline_of(self, phase: PhaseRecord) -> PhaseRecord | None:
        """The last phase without faults before ``phase`` (else the first one at all)."""
        index = self.phases.index(phase)
        before = [p for p in self.phases[:index] if not p.faulted]
        if before:
            return before[-1]
        return next((p for p in self.phases if not p.faulted), None)

    def expected(self, phase: PhaseRecord) -> dict[str, float]:
        """How many requests of each service the baseline's pace makes in ``phase``."""
        baseline = self.baseline_of(phase)
        if baseline is None:
            return {}
        scale = self.seconds(phase.name) / self.seconds(baseline.name)
        return {
            service: len(samples) * scale
            for service, samples in by_service(self.by_phase[baseline.name]).items()
        }

    def baseline_samples(self, phase: PhaseRecord) -> list[Sample]:
        baseline = self.baseline_of(phase)
        return [] if baseline is None else self.by_phase[baseline.name]

    def server_between(self, start: float, end: float) -> list[ServerSample]:
        return [
            s
            for s in self.evidence.server
            if start - SERVER_INTERVAL * 1.5 <= float(s.get("at", 0)) <= end + SERVER_INTERVAL * 1.5
        ]

    def server_within(self, start: float, end: float) -> list[ServerSample]:
        return [s for s in self.evidence.server if start <= float(s.get("at", 0)) <= end]

    def group_window(self, glob: str, window: Window) -> GroupWindow | None:
        record = self.records.get(window.phase)
        if record is None:
            return None
        chosen = select(window, record, self.by_phase[record.name])
        if chosen is None:
            return None
        samples, seconds = chosen
        start = record.end - seconds if window.anchor == "restored" else record.start
        targets = targets_of(record.faults)
        names = [r for r in self.requests if fnmatch.fnmatchcase(r, glob)]
        return GroupWindow(
            [s for s in samples if fnmatch.fnmatchcase(s.name, glob)],
            seconds,
            services=services_of(names),
            targets=frozenset() if targets is None else targets,
            server=self.server_between(start, start + seconds),
        )

    # -- 1. thresholds ------------------------------------------------------------------------

    def thresholds(self) -> list[ThresholdVerdict]:
        verdicts = []
        for glob, by_key in self.scenario.thresholds.items():
            whole = {
                p.name: w
                for p in self.phases
                if (w := self.group_window(glob, Window(p.name))) is not None
            }
            for key, expressions in by_key.items():
                window = Window.parse(key)
                current = self.group_window(glob, window)
                for threshold in expressions:
                    if current is None:
                        verdicts.append(
                            ThresholdVerdict(
                                glob,
                                key,
                                threshold.text,
                                False,
                                None,
                                None,
                                0,
                                f"{threshold.text}: window {key} did not exist in this run "
                                "(the phase did not run, or its faults never stopped acting)",
                                defined=False,
                                op=threshold.op,
                            )
                        )
                        continue
                    verdict = evaluate(threshold, current, whole)
                    verdicts.append(
                        ThresholdVerdict(
                            glob,
                            key,
                            threshold.text,
                            verdict.passed,
                            _finite(verdict.measured),
                            _finite(verdict.expected),
                            current.count,
                            verdict.text,
                            defined=verdict.defined,
                            op=threshold.op,
                        )
                    )
        return verdicts

    # -- 3. no failure unjudged -----------------------------------------------------------------

    def unjudged_failures(self) -> list[ThresholdVerdict]:
        verdicts = []
        for phase in self.phases:
            if phase.faulted and self.scenario.phase(phase.name).isolation:
                continue  # isolation judges every service's failures here
            globs = [
                glob
                for glob, by_key in self.scenario.thresholds.items()
                if any(Window.parse(k).phase == phase.name for k in by_key)
            ]
            failed: dict[str, int] = {}
            for sample in self.by_phase[phase.name]:
                if sample.failed and not any(fnmatch.fnmatchcase(sample.name, g) for g in globs):
                    failed[sample.name] = failed.get(sample.name, 0) + 1
            for name, count in sorted(failed.items()):
                verdicts.append(
                    ThresholdVerdict(
                        name,
                        phase.name,
                        "no failure unjudged",
                        False,
                        float(count),
                        0.0,
                        count,
                        f"{count} failure(s) of {name} in {phase.name}, where no threshold judges "
                        f"{name} and isolation is not judged: add a threshold for it (e.g. "
                        "error_rate < 5%) to accept them",
                        source="unjudged",
                        op="==",
                    )
                )
        return verdicts

    # -- 4. validity ----------------------------------------------------------------------------

    def faults(self) -> tuple[list[dict[str, Any]], list[tuple[str, Effect]]]:
        """Each fault's timings and the evidence of its effect."""
        timings, effects = [], []
        for phase in self.phases:
            samples = self.by_phase[phase.name]
            baseline = self.baseline_samples(phase)
            for fault in phase.faults:
                effect = self.effect(fault, phase, samples, baseline)
                effects.append(
                    (f"fault had an effect: {fault.description} in {phase.name}", effect)
                )
                timings.append(
                    {
                        "phase": phase.name,
                        **fault.as_dict(),
                        "effect_seen_at": _effect_seen(fault, samples, baseline),
                        "served_again_at": _served_again(fault, samples, phase),
                        "effective": effect.effective,
                        "effect": effect.detail,
                    }
                )
        return timings, effects

    def effect(
        self, fault: FaultRecord, phase: PhaseRecord, samples: list[Sample], baseline: list[Sample]
    ) -> Effect:
        signature = fault.signature
        if signature.evidence == "database":
            return database_effect(fault, samples, self.server_between(phase.start, phase.end))
        if signature.evidence == "provider":
            return provider_effect(fault)
        if fault.target is None:
            return Effect(False, "the fault names no target service to look at")
        seen = target_effect(fault.target, samples, baseline or None, slows=signature.slows)
        if not signature.holds:
            return seen
        before = self.baseline_of(phase)
        # readings taken within each phase only: a pool's figures are of their instant
        held = held_effect(
            fault.target,
            self.server_within(phase.start, phase.end),
            [] if before is None else self.server_within(before.start, before.end),
        )
        return Effect(seen.effective or held.effective, f"{seen.detail}; {held.detail}")

    def validity(
        self,
        verdicts: Sequence[ThresholdVerdict],
        effects: Sequence[tuple[str, Effect]],
        machine: Sequence[ValidityCheck],
    ) -> list[ValidityCheck]:
        evidence = self.evidence
        checks = [
            ValidityCheck(
                "load generator not saturated",
                not evidence.saturated,
                "Locust warned that a load process was CPU-bound" if evidence.saturated else "",
            ),
            *machine,
            *self.delivery(),
        ]
        # Too few samples make a pass meaningless, not a breach: a threshold that failed on
        # five requests that all hung still failed.
        all_passed: dict[tuple[str, str], tuple[bool, int]] = {}
        for verdict in verdicts:
            if verdict.source != "threshold":
                continue
            key = (verdict.group, verdict.phase)
            passed, _ = all_passed.get(key, (True, 0))
            all_passed[key] = (passed and verdict.passed, verdict.samples)
        for (glob, phase), (passed, count) in all_passed.items():
            if passed:
                checks.append(
                    ValidityCheck(
                        f"enough samples: {glob} in {phase}",
                        count >= MIN_SAMPLES,
                        f"{count} requests (at least {MIN_SAMPLES} needed)",
                        guards_pass_only=True,
                    )
                )
        checks += [ValidityCheck(name, e.effective, e.detail) for name, e in effects]
        for result in evidence.invariants:
            floor = self.scenario.min_checked_of(result.name)
            checks.append(
                ValidityCheck(
                    f"invariant {result.name} checked enough",
                    result.checked >= floor,
                    f"{result.checked} checked (at least {floor} needed)",
                )
            )
        return checks

    def delivery(self) -> list[ValidityCheck]:
        """The load achieved as planned: its users, and each phase's pace (:mod:`.delivery`)."""
        checks = []
        if self.phases:
            checks.append(
                users_check(self.scenario.load.users, self.evidence.samples, self.phases[0])
            )
        for phase in self.phases:
            baseline = self.baseline_of(phase)
            if baseline is None or baseline is phase:
                continue
            checks.append(
                pace_check(
                    phase,
                    self.by_phase[phase.name],
                    self.seconds(phase.name),
                    baseline,
                    self.by_phase[baseline.name],
                    self.seconds(baseline.name),
                )
            )
        return checks


def _effect_seen(
    fault: FaultRecord, samples: Sequence[Sample], baseline: Sequence[Sample]
) -> float | None:
    """When a client first saw the fault: the end of the first request of its target that
    started after it was applied and failed, or took longer than any of the baseline's."""
    slowest = max((s.latency_ms for s in baseline), default=float("inf"))
    hurt = [
        s.end
        for s in samples
        if s.start >= fault.applied_at
        and (fault.target is None or service_of(s.name) == fault.target)
        and (s.failed or s.latency_ms > slowest)
    ]
    return min(hurt, default=None)


def _served_again(
    fault: FaultRecord, samples: Sequence[Sample], phase: PhaseRecord
) -> float | None:
    """When the target served again: the end of its first successful request that started
    after the fault stopped acting (for a database fault, the last service to do so)."""
    if fault.restored_at is None:
        return None
    after = [s for s in samples if s.start >= fault.restored_at and not s.failed]
    services = by_service(after)
    if fault.target is not None:
        firsts = [min((s.end for s in services.get(fault.target, [])), default=None)]
    else:
        firsts = [min(s.end for s in group) for group in services.values()] or [None]
    if any(f is None for f in firsts):
        return None
    return max(f for f in firsts if f is not None)


def _finite(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return float(value)
