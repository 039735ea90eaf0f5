"""Verdicts of a scenario run, as plain data, and the exit code they add up to.

Exit codes (DESIGN §4): 0 pass · 1 threshold breached · 2 invariant violated · 3 invalid run
· 4 harness or infrastructure error. Money comes first: a violated invariant is reported as 2
even when the run is also invalid or breached a threshold. A run whose evidence cannot be
trusted at all (a fault with no effect, an invariant that checked too little, a saturated
load generator or machine, a load short of its plan) is invalid whatever else it found. A
check that could not be judged (a verdict with no sample to rest on, too few samples under a
pass) makes a pass impossible: the run is invalid, unless a breach proven elsewhere fails it
anyway. Silence is never a pass, and never a breach of its own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from isolation_harness.chaos.errors import (
    EXIT_HARNESS_ERROR,
    EXIT_INVALID,
    EXIT_INVARIANT,
    EXIT_LABELS,
    EXIT_PASS,
    EXIT_THRESHOLD,
)
from isolation_harness.chaos.invariants.base import InvariantResult
from isolation_harness.chaos.scenario.thresholds import Op, margin_of, relative_margin_of

#: where a verdict comes from: a threshold of the scenario, the isolation judged by default
#: in every faulted phase, or the rule that no failure goes unjudged
Source = Literal["threshold", "isolation", "unjudged"]


@dataclass(frozen=True)
class ThresholdVerdict:
    """One judged check of a request group in a phase or window."""

    group: str
    phase: str
    expression: str
    passed: bool
    measured: float | None
    expected: float | None
    samples: int
    reason: str = ""
    source: Source = "threshold"
    #: False when it could not be judged (no samples): neither passed nor breached
    defined: bool = True
    #: how ``measured`` was compared with ``expected`` (the limit); None if not by a number
    op: Op | Literal["in"] | None = None

    @property
    def breached(self) -> bool:
        return self.defined and not self.passed

    @property
    def margin(self) -> float | None:
        """How far the measured value was from breaching
        (:func:`chaos.scenario.thresholds.margin_of`); None when undefined or when nothing
        numeric was compared (``codes in (...)``)."""
        if (
            not self.defined
            or self.op is None
            or self.op == "in"
            or self.measured is None
            or self.expected is None
        ):
            return None
        return margin_of(self.op, self.measured, self.expected)

    @property
    def relative_margin(self) -> float | None:
        """The margin as a fraction of the limit; None when either has no value or is 0."""
        found = self.margin
        if found is None or self.expected is None:
            return None
        return relative_margin_of(found, self.expected)

    def as_dict(self) -> dict[str, object]:
        return {
            **asdict(self),
            "margin": self.margin,
            "relative_margin": self.relative_margin,
        }


@dataclass(frozen=True)
class ValidityCheck:
    """One reason the run could be invalid: checked, and whether it held."""

    name: str
    passed: bool
    detail: str
    #: True when the check only guards a pass (too few samples to trust one): a breach
    #: found elsewhere in the run still stands
    guards_pass_only: bool = False

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Outcome:
    thresholds: list[ThresholdVerdict] = field(default_factory=list)
    invariants: list[InvariantResult] = field(default_factory=list)
    validity: list[ValidityCheck] = field(default_factory=list)
    harness_errors: list[str] = field(default_factory=list)
    #: what ``expect: fail`` named, and whether each happened (empty for ``expect: pass``)
    expectations: list[ExpectationResult] = field(default_factory=list)
    #: the blast radius, the fault timings and other figures for the journal
    analysis: dict[str, Any] = field(default_factory=dict)

    @property
    def untrusted(self) -> bool:
        """A reason nothing the run found can be trusted (a fault without effect…)."""
        return any(not v.passed for v in self.validity if not v.guards_pass_only)

    @property
    def unproven(self) -> bool:
        """A reason a pass cannot be trusted: a verdict without samples, too few samples."""
        return any(not t.defined for t in self.thresholds) or any(
            not v.passed for v in self.validity if v.guards_pass_only
        )

    @property
    def raw_code(self) -> int:
        """What the run found, before comparing with what the scenario expects."""
        if self.harness_errors:
            return EXIT_HARNESS_ERROR
        if any(not i.passed for i in self.invariants):
            return EXIT_INVARIANT
        if self.untrusted:
            return EXIT_INVALID
        if any(t.breached for t in self.thresholds):
            return EXIT_THRESHOLD
        if self.unproven:
            return EXIT_INVALID
        return EXIT_PASS

    def exit_code(self) -> int:
        """The run's exit code, given what the scenario expected.

        With named expected failures (``expect: {fail: [...]}``, judged into
        :attr:`expectations`), the run passes only if every one of them happened, no other
        invariant was violated and the run is valid; a named failure that did not happen is
        a breach (1). Harness errors (4) and invalid runs (3) stay what they are.
        """
        code = self.raw_code
        if not self.expectations or code == EXIT_HARNESS_ERROR or self.untrusted:
            return code
        if any(not e.happened for e in self.expectations):
            return EXIT_THRESHOLD
        expected_invariants = {e.invariant for e in self.expectations if e.invariant}
        if any(not i.passed and i.name not in expected_invariants for i in self.invariants):
            return EXIT_INVARIANT
        return EXIT_INVALID if self.unproven else EXIT_PASS

    def label(self) -> str:
        return EXIT_LABELS[self.exit_code()]

    def reasons(self) -> list[str]:
        """One line per thing that went wrong (or was not as expected)."""
        lines = [f"harness error: {e}" for e in self.harness_errors]
        lines += [
            f"invariant {i.name}: {'; '.join(i.violations[:3])}"
            for i in self.invariants
            if not i.passed
        ]
        lines += [f"invalid: {v.name}: {v.detail}" for v in self.validity if not v.passed]
        lines += [
            f"undefined: {t.group} / {t.phase}: {t.reason}"
            for t in self.thresholds
            if not t.defined
        ]
        lines += [
            f"{t.source} {t.group} / {t.phase}: {t.reason}" for t in self.thresholds if t.breached
        ]
        lines += [
            f"expected failure did not happen: {e.name}: {e.detail}"
            for e in self.expectations
            if not e.happened
        ]
        return lines


@dataclass(frozen=True)
class ExpectationResult:
    """One failure ``expect:`` named, and whether the run showed it."""

    name: str
    happened: bool
    detail: str
    invariant: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
