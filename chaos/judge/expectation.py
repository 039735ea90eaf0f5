"""``expect: {fail: [...]}``: did the run fail exactly where the scenario said it must?

Each named failure is looked up among the verdicts: a threshold of a group in a phase that
breached (not one that was undefined), isolation of a service in a phase that failed, an
invariant that was violated. The run then passes only if every one of them happened, no
other invariant was violated and the run is valid (:meth:`Outcome.exit_code`).
"""

from __future__ import annotations

from collections.abc import Sequence

from isolation_harness.chaos.invariants import InvariantResult
from isolation_harness.chaos.judge.verdicts import ExpectationResult, ThresholdVerdict
from isolation_harness.chaos.scenario.model import ExpectedFailure


def judge_expectations(
    expected: Sequence[ExpectedFailure],
    verdicts: Sequence[ThresholdVerdict],
    invariants: Sequence[InvariantResult],
) -> list[ExpectationResult]:
    return [_one(item, verdicts, invariants) for item in expected]


def _one(
    item: ExpectedFailure,
    verdicts: Sequence[ThresholdVerdict],
    invariants: Sequence[InvariantResult],
) -> ExpectationResult:
    if item.invariant is not None:
        found = next((i for i in invariants if i.name == item.invariant), None)
        if found is None:
            return ExpectationResult(item.name, False, "it was not checked", item.invariant)
        if found.passed:
            return ExpectationResult(
                item.name, False, f"it held ({found.checked} checked)", item.invariant
            )
        return ExpectationResult(item.name, True, "; ".join(found.violations[:3]), item.invariant)
    if item.isolation is not None:
        matching = [
            v
            for v in verdicts
            if v.source == "isolation"
            and v.phase == item.phase
            and v.group == f"service {item.isolation}"
        ]
    else:
        matching = [
            v
            for v in verdicts
            if v.source == "threshold"
            and v.group == item.group
            and v.phase == item.phase
            and v.expression == item.threshold
        ]
    if not matching:
        return ExpectationResult(item.name, False, "it was not judged (its phase did not run?)")
    breached = [v for v in matching if v.breached]
    if breached:
        return ExpectationResult(item.name, True, breached[0].reason)
    undefined = [v for v in matching if not v.defined]
    if undefined:
        return ExpectationResult(item.name, False, f"undefined: {undefined[0].reason}")
    return ExpectationResult(item.name, False, f"it held: {matching[0].reason or 'passed'}")
