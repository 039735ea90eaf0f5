"""Exit codes from verdicts: money first, then validity (undefined included), then thresholds;
and named expected failures."""

from __future__ import annotations

from isolation_harness.chaos.judge.verdicts import (
    ExpectationResult,
    InvariantResult,
    Outcome,
    ThresholdVerdict,
    ValidityCheck,
)

BREACH = ThresholdVerdict("deposits.*", "fault", "error_rate == 0", False, 0.5, 0.0, 100)
OK = ThresholdVerdict("deposits.*", "fault", "error_rate == 0", True, 0.0, 0.0, 100)
SILENT = ThresholdVerdict("deposits.*", "fault", "failures == 0", False, None, 0.0, 0,
                          "no samples", defined=False)  # fmt: skip
LOST = InvariantResult("acknowledged_deposits_exist", False, 10, ["deposit x missing"])
KEPT = InvariantResult("acknowledged_deposits_exist", True, 10)
UNPAID = InvariantResult("provider_reconciled", False, 10, ["payment 7 never credited"])
NO_EFFECT = ValidityCheck("fault had an effect", False, "no change")
FEW = ValidityCheck("enough samples", False, "3 requests", guards_pass_only=True)
SEEN = ExpectationResult("threshold deposits.* / fault: error_rate == 0", True, "breached")
NOT_SEEN = ExpectationResult("threshold deposits.* / fault: error_rate == 0", False, "it held")
SEEN_UNPAID = ExpectationResult("invariant provider_reconciled", True, "x", "provider_reconciled")


def code(**parts: object) -> int:
    return Outcome(**parts).exit_code()  # type: ignore[arg-type]


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


def test_silence_is_invalid_never_a_pass_nor_a_breach() -> None:
    assert code(thresholds=[OK, SILENT]) == 3
    assert not SILENT.breached
    assert Outcome(thresholds=[SILENT]).label() == "INVALID"
    # silence cannot prove a pass; a breach proven elsewhere still fails the run
    assert code(thresholds=[BREACH, SILENT]) == 1
    assert code(thresholds=[BREACH, SILENT], validity=[NO_EFFECT]) == 3


def test_harness_error_is_4() -> None:
    assert code(thresholds=[OK], harness_errors=["boom"]) == 4
    assert code(expectations=[SEEN], harness_errors=["boom"]) == 4


def test_named_expected_failures() -> None:
    assert code(thresholds=[BREACH], expectations=[SEEN]) == 0
    # what was named did not fail: a failure of the gate, whatever else failed
    assert code(thresholds=[OK], expectations=[NOT_SEEN]) == 1
    assert code(thresholds=[BREACH], expectations=[SEEN, NOT_SEEN]) == 1
    # an invalid run proves nothing, expected failure or not; nor does a pass on silence
    assert code(thresholds=[BREACH], validity=[NO_EFFECT], expectations=[SEEN]) == 3
    assert code(thresholds=[BREACH, SILENT], expectations=[SEEN]) == 3
    assert code(thresholds=[BREACH], validity=[FEW], expectations=[SEEN]) == 3
    # a known money bug passes; another invariant violated beside it does not
    assert code(invariants=[UNPAID], expectations=[SEEN_UNPAID]) == 0
    assert code(invariants=[UNPAID, LOST], expectations=[SEEN_UNPAID]) == 2


def test_reasons_say_what_happened() -> None:
    outcome = Outcome(thresholds=[BREACH, SILENT], expectations=[NOT_SEEN])
    text = "\n".join(outcome.reasons())
    assert "undefined: deposits.* / fault: no samples" in text
    assert "expected failure did not happen" in text


def test_a_verdict_carries_its_margin() -> None:
    slow = ThresholdVerdict("deposits.*", "fault", "p99 < 250ms", False, 300.0, 250.0, 100,
                            op="<")  # fmt: skip
    assert (slow.margin, slow.relative_margin) == (-50.0, -0.2)
    fast = ThresholdVerdict("deposits.*", "fault", "p99 < 250ms", True, 200.0, 250.0, 100,
                            op="<")  # fmt: skip
    assert fast.as_dict()["margin"] == 50.0
    assert fast.as_dict()["relative_margin"] == 0.2
    assert fast.as_dict()["op"] == "<"
    assert BREACH.margin is None  # no operator recorded: no margin
    # error_rate == 0: a breach by half the requests; no scale for a limit of 0
    equal = ThresholdVerdict("deposits.*", "fault", "error_rate == 0", False, 0.5, 0.0, 100,
                             op="==")  # fmt: skip
    assert (equal.margin, equal.relative_margin) == (-0.5, None)


def test_an_undefined_verdict_has_no_margin() -> None:
    silent = ThresholdVerdict("deposits.*", "fault", "failures == 0", False, None, 0.0, 0,
                              "no samples", defined=False, op="==")  # fmt: skip
    assert silent.margin is None
    assert silent.as_dict()["margin"] is None
    codes = ThresholdVerdict("deposits.*", "fault", "codes in (pool_timeout)", True, None, None,
                             100, op="in")  # fmt: skip
    assert (codes.margin, codes.relative_margin) == (None, None)
