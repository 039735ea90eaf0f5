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


def test_requests_in_flight_when_a_fault_starts_belong_to_its_phase() -> None:
    from chaos.runner import PhaseRecord, assign
    from load.samples import Sample

    phases = [PhaseRecord("baseline", 0.0, 10.0), PhaseRecord("fault", 10.0, 20.0),
              PhaseRecord("recovery", 20.0, 30.0)]  # fmt: skip
    early = Sample(5.0, "x", 100.0, 200)  # ends at 5.1: baseline
    caught = Sample(9.9, "x", 500.0, 503, True)  # in flight at 10.0: met the fault
    hung = Sample(19.0, "x", 5000.0, 0, True)  # started in the fault, ended in recovery
    late = Sample(25.0, "x", 10.0, 200)
    found = assign([early, caught, hung, late], phases, faulted={"fault"})
    assert found == {"baseline": [early], "fault": [caught, hung], "recovery": [late]}
    # Without faults in the next phase, start time alone decides.
    assert assign([caught], phases, faulted=set())["baseline"] == [caught]
