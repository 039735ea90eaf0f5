"""Exit codes from verdicts: money first, then validity, then thresholds."""

from __future__ import annotations

from chaos.invariants import InvariantResult
from chaos.verdicts import Outcome, ThresholdVerdict, ValidityCheck

BREACH = ThresholdVerdict("deposits.*", "fault", "error_rate == 0", False, 0.5, 0.0, 100)
OK = ThresholdVerdict("deposits.*", "fault", "error_rate == 0", True, 0.0, 0.0, 100)
LOST = InvariantResult("acknowledged_deposits_exist", False, 10, ["deposit x missing"])
KEPT = InvariantResult("acknowledged_deposits_exist", True, 10)
NO_EFFECT = ValidityCheck("fault had an effect", False, "no change")
FEW = ValidityCheck("enough samples", False, "3 requests", guards_pass_only=True)


def code(expect: str = "pass", **parts: object) -> int:
    return Outcome(**parts).exit_code(expect)  # type: ignore[arg-type]


def test_pass() -> None:
    assert code(thresholds=[OK], invariants=[KEPT]) == 0


def test_breach_is_1_and_lost_money_is_2_whatever_else() -> None:
    assert code(thresholds=[BREACH, OK]) == 1
    assert code(thresholds=[BREACH], invariants=[LOST]) == 2
    assert code(thresholds=[OK], invariants=[LOST], validity=[NO_EFFECT]) == 2


def test_invalid_runs() -> None:
    assert code(thresholds=[OK], validity=[NO_EFFECT]) == 3
    assert code(thresholds=[BREACH], validity=[NO_EFFECT]) == 3
    # Too few samples only make a pass untrustworthy; a breach elsewhere stands.
    assert code(thresholds=[OK], validity=[FEW]) == 3
    assert code(thresholds=[BREACH, OK], validity=[FEW]) == 1


def test_harness_error_is_4() -> None:
    assert code(thresholds=[OK], harness_errors=["boom"]) == 4
    assert code(expect="fail", harness_errors=["boom"]) == 4


def test_expect_fail() -> None:
    assert code("fail", thresholds=[BREACH]) == 0
    assert code("fail", invariants=[LOST]) == 0
    assert code("fail", thresholds=[OK]) == 1
    assert code("fail", thresholds=[OK], validity=[NO_EFFECT]) == 3
