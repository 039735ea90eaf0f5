"""Verdicts of a scenario run, as plain data computed from samples, and the exit code.

Exit codes (DESIGN §4): 0 pass · 1 threshold breached · 2 invariant violated · 3 invalid run
(the fault had no measurable effect, too few samples, or the load generator was saturated) ·
4 harness or infrastructure error. Money comes first: a violated invariant is reported as 2
even when the run is also invalid or breached a threshold. Too few samples only invalidate a
pass: a breach found with enough evidence elsewhere stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from chaos.errors import (
    EXIT_HARNESS_ERROR,
    EXIT_INVALID,
    EXIT_INVARIANT,
    EXIT_PASS,
    EXIT_THRESHOLD,
)
from chaos.invariants import InvariantResult


@dataclass(frozen=True)
class ThresholdVerdict:
    group: str
    phase: str
    expression: str
    passed: bool
    measured: float | None
    expected: float | None
    samples: int
    reason: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


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

    @property
    def raw_code(self) -> int:
        """What the run found, before comparing with what the scenario expects."""
        if self.harness_errors:
            return EXIT_HARNESS_ERROR
        if any(not i.passed for i in self.invariants):
            return EXIT_INVARIANT
        if any(not v.passed for v in self.validity if not v.guards_pass_only):
            return EXIT_INVALID
        if any(not t.passed for t in self.thresholds):
            return EXIT_THRESHOLD
        if any(not v.passed for v in self.validity):
            return EXIT_INVALID
        return EXIT_PASS

    def exit_code(self, expect: str) -> int:
        """The run's exit code given the scenario's ``expect``.

        ``expect: fail`` passes when the run failed as expected (1 or 2), and is reported
        as a threshold breach (1) when it unexpectedly passed; invalid and harness errors
        stay what they are.
        """
        code = self.raw_code
        if expect != "fail" or code in (EXIT_INVALID, EXIT_HARNESS_ERROR):
            return code
        return EXIT_PASS if code in (EXIT_THRESHOLD, EXIT_INVARIANT) else EXIT_THRESHOLD

    def label(self, expect: str) -> str:
        code = self.exit_code(expect)
        return {
            EXIT_PASS: "PASS",
            EXIT_THRESHOLD: "FAIL (threshold)",
            EXIT_INVARIANT: "FAIL (invariant)",
            EXIT_INVALID: "INVALID",
            EXIT_HARNESS_ERROR: "ERROR",
        }[code]


def failed(items: Sequence[ThresholdVerdict | ValidityCheck | InvariantResult]) -> int:
    return sum(1 for item in items if not item.passed)
