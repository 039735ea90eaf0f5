"""The money oracle, pure: the client's record against stored operations, and the payment
provider's book against the ledger. Each broken history is caught, naming the id."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from isolation_harness.chaos.errors import EXIT_INVALID
from isolation_harness.chaos.invariants import InvariantResult
from isolation_harness.chaos.invariants.oracle import (
    DepositCredit,
    ProviderPayment,
    StoredDeposit,
    StoredOperation,
    judge_operations,
    reconcile_provider,
)
from isolation_harness.chaos.judge.judgement import judge
from isolation_harness.load.operations import (
    ACKNOWLEDGED,
    FAILED,
    INDETERMINATE,
    OPERATION_KINDS,
    Operation,
    Outcome,
    outcome_of,
)
from tests.unit.judge_data import correct_run

USER = "0b6f3c1e-0000-4000-8000-000000000001"
OTHER = "0b6f3c1e-0000-4000-8000-000000000002"


def withdraw(
    op: str, key: str, amount: str = "1.50", outcome: Outcome = ACKNOWLEDGED, tid: str = "7"
) -> Operation:
    returned = {"transaction_id": tid} if outcome == ACKNOWLEDGED else {}
    return Operation(op, "wallet.withdraw",
                     {"user_id": USER, "key": key, "currency": "USDT", "amount": amount},
                     outcome, status=201 if outcome == ACKNOWLEDGED else 0,
                     returned=returned)  # fmt: skip


def withdrawal(tid: str, key: str, amount: str = "1.500000000000000000") -> StoredOperation:
    return StoredOperation("wallet.withdraw", f"withdrawal transaction {tid}",
                           {"user_id": USER, "key": key, "currency": "USDT", "amount": amount},
                           {"transaction_id": tid})  # fmt: skip


def release(op: str, trade: str, outcome: Outcome = ACKNOWLEDGED) -> Operation:
    return Operation(op, "p2p.trade_release", {"trade_id": trade, "by": "seller"}, outcome)


def released(event: int, trade: str) -> StoredOperation:
    return StoredOperation("p2p.trade_release", f"trade {trade} event {event}",
                           {"trade_id": trade, "by": "seller"})  # fmt: skip


def test_a_consistent_history_passes_with_its_counts() -> None:
    operations = [
        withdraw("w1", "k1", tid="7"),
        withdraw("w2", "k2", outcome=FAILED),  # refused: nothing stored
        withdraw("w3", "k3", outcome=INDETERMINATE),  # applied after all
        withdraw("w4", "k4", outcome=INDETERMINATE),  # never applied
        release("r1", "T1"),
    ]
    stored = [withdrawal("7", "k1"), withdrawal("8", "k3"), released(1, "T1")]
    verdict = judge_operations(operations, stored)
    assert verdict.passed, verdict.violations
    assert verdict.counts == {
        "checked": 2, "stored": 3, "lost": 0, "unexpected": 0, "duplicated": 0, "failed": 1,
        "indeterminate": 2, "indeterminate_applied": 1, "indeterminate_not_applied": 1,
    }  # fmt: skip


def test_an_acknowledged_operation_missing_from_the_database_is_lost() -> None:
    verdict = judge_operations([withdraw("w1", "k1"), release("r1", "T9")], [])
    assert verdict.counts["lost"] == 2
    assert any("lost" in v and "w1" in v and "key=k1" in v for v in verdict.violations)
    assert any("lost" in v and "trade_id=T9" in v for v in verdict.violations)


def test_an_operation_stored_with_another_amount_than_sent_is_lost() -> None:
    verdict = judge_operations([withdraw("w1", "k1", "1.50")], [withdrawal("7", "k1", "15.0")])
    assert verdict.counts["lost"] == 1
    [violation] = verdict.violations
    assert "withdrawal transaction 7" in violation
    assert "amount 15.0 where the client sent 1.50" in violation


def test_an_answer_naming_another_transaction_than_stored_is_caught() -> None:
    verdict = judge_operations([withdraw("w1", "k1", tid="7")], [withdrawal("8", "k1")])
    assert verdict.counts["lost"] == 1
    assert "transaction_id=7" in verdict.violations[0]
    assert "withdrawal transaction 8" in verdict.violations[0]


def test_a_stored_operation_no_request_explains_is_unexpected() -> None:
    stored = [withdrawal("7", "k1"), withdrawal("9", "ghost", "3")]
    verdict = judge_operations([withdraw("w1", "k1")], stored)
    assert verdict.counts["unexpected"] == 1
    [violation] = verdict.violations
    assert "unexpected" in violation
    assert "withdrawal transaction 9" in violation


def test_a_stored_operation_whose_only_request_was_refused_is_unexpected() -> None:
    verdict = judge_operations([withdraw("w2", "k2", outcome=FAILED)], [withdrawal("8", "k2")])
    assert verdict.counts["unexpected"] == 1
    assert "refused" in verdict.violations[0]
    assert "withdrawal transaction 8" in verdict.violations[0]


def test_an_indeterminate_request_stored_with_other_values_is_unexpected() -> None:
    verdict = judge_operations(
        [withdraw("w3", "k3", "1.50", outcome=INDETERMINATE)], [withdrawal("8", "k3", "2")]
    )
    assert verdict.counts["unexpected"] == 1
    assert verdict.counts["indeterminate_applied"] == 1
    assert "withdrawal transaction 8" in verdict.violations[0]


def test_one_request_applied_twice_is_duplicated() -> None:
    verdict = judge_operations([release("r1", "T1")], [released(1, "T1"), released(2, "T1")])
    assert verdict.counts["duplicated"] == 1
    assert "trade T1 event 1" in verdict.violations[0]
    assert "trade T1 event 2" in verdict.violations[0]


def test_a_request_applied_again_under_another_key_is_duplicated() -> None:
    """A build that retries a withdrawal with a fresh key: same user, currency and amount."""
    verdict = judge_operations(
        [withdraw("w1", "k1")], [withdrawal("7", "k1"), withdrawal("8", "k1:again")]
    )
    assert verdict.counts == verdict.counts | {"duplicated": 1, "unexpected": 0, "lost": 0}
    assert "withdrawal transaction 8" in verdict.violations[0]
    assert "w1" in verdict.violations[0]


def test_an_indeterminate_request_applied_or_not_is_counted_never_judged() -> None:
    maybe = [
        withdraw("w3", "k3", outcome=INDETERMINATE),
        withdraw("w4", "k4", outcome=INDETERMINATE),
    ]
    applied = judge_operations(maybe, [withdrawal("8", "k3")])
    assert applied.passed
    assert (
        applied.counts["indeterminate_applied"],
        applied.counts["indeterminate_not_applied"],
    ) == (1, 1)
    none = judge_operations(maybe, [])
    assert none.passed
    assert none.counts["indeterminate_not_applied"] == 2


def test_identities_compare_ids_in_any_case_and_amounts_as_decimals() -> None:
    sent = Operation("d1", "deposit.create",
                     {"user_id": USER.upper(), "key": "K", "currency": "BTC", "amount": "0.10"},
                     ACKNOWLEDGED)  # fmt: skip
    row = StoredOperation("deposit.create", "deposit D",
                          {"user_id": USER, "key": "K", "currency": "BTC",
                           "amount": "0.100000000000000000"})  # fmt: skip
    assert judge_operations([sent], [row]).passed
    other_key = StoredOperation("deposit.create", "deposit D", {**row.fields, "key": "k"})
    assert not judge_operations([sent], [other_key]).passed  # keys are exact


def test_no_record_at_all_checks_nothing_and_the_run_is_invalid() -> None:
    verdict = judge_operations([], [])
    assert verdict.counts["checked"] == 0
    result = InvariantResult("no_operation_lost", verdict.passed, verdict.counts["checked"],
                             verdict.violations, verdict.counts)  # fmt: skip
    outcome = judge(replace(correct_run(), invariants=[result]))
    assert outcome.exit_code() == EXIT_INVALID
    assert "invalid: invariant no_operation_lost checked enough: 0 checked (at least 1 needed)" in (
        outcome.reasons()
    )
    # something stored that no record explains is still a violation
    stored = StoredOperation("deposit.create", "deposit D", {"key": "k", "user_id": "u",
                             "currency": "BTC", "amount": "1"})  # fmt: skip
    assert not judge_operations([], [stored]).passed


def test_every_kind_names_its_identity_among_its_fields() -> None:
    for kind in OPERATION_KINDS.values():
        assert kind.identity, kind
        assert not set(kind.identity) & set(kind.values), kind


@pytest.mark.parametrize(
    ("status", "documented", "code", "named", "outcome"),
    [
        (201, True, None, None, ACKNOWLEDGED),
        (201, False, None, None, INDETERMINATE),  # a 2xx lacking a documented field
        (409, False, "insufficient_funds", "wallet", FAILED),
        (0, False, None, None, INDETERMINATE),  # no answer
        (503, False, "service_broken", "wallet", FAILED),  # refused before it began
        (503, False, "service_broken", "p2p", INDETERMINATE),  # named by another service
        (503, False, "timeout", "wallet", INDETERMINATE),  # may strike after the commit
        (503, False, "provider_unavailable", "deposits", FAILED),  # written only after it
        (500, False, None, None, INDETERMINATE),  # a bare 500
    ],
)
def test_outcome_of_an_answer_to_a_wallet_call(
    status: int, documented: bool, code: str | None, named: str | None, outcome: Outcome
) -> None:
    called = "deposits" if code == "provider_unavailable" else "wallet"
    assert outcome_of(status, documented, code, named, called) == outcome


# -- the provider's book ---------------------------------------------------------------------

DEPOSIT = "d0000000-0000-4000-8000-000000000001"


def payment(status: str = "finished", amount: str = "0.01", pid: str = "501") -> ProviderPayment:
    return ProviderPayment(pid, status, Decimal(amount), "btc", Decimal(amount), DEPOSIT,
                           last_ipn=f"{status}, answered HTTP 200")  # fmt: skip


def deposit(status: str = "finished", pid: str = "501") -> StoredDeposit:
    return StoredDeposit(DEPOSIT, pid, USER, "BTC", Decimal("0.01"), status)


def credit(tid: str = "40", amount: str = "0.01", user: str = USER) -> DepositCredit:
    return DepositCredit(tid, DEPOSIT, user, "BTC", Decimal(amount))


def test_a_finished_payment_credited_once_with_its_amount_reconciles() -> None:
    waiting = ProviderPayment("502", "waiting", Decimal(1), "eth")
    verdict = reconcile_provider([payment(), waiting], [deposit()], [credit()])
    assert verdict.passed, verdict.violations
    assert verdict.counts == {
        "payments": 2, "finished": 1, "credited": 1, "uncredited": 0, "credited_twice": 0,
        "wrong_amount": 0, "credits": 1, "credits_without_payment": 0,
    }  # fmt: skip


def test_a_finished_payment_never_credited_is_caught_even_on_an_expired_deposit() -> None:
    verdict = reconcile_provider([payment()], [deposit("expired")], [])
    assert verdict.counts["uncredited"] == 1
    [violation] = verdict.violations
    assert "payment 501" in violation
    assert DEPOSIT in violation
    assert "expired" in violation
    assert "answered HTTP 200" in violation


def test_a_finished_payment_of_no_deposit_is_caught() -> None:
    verdict = reconcile_provider([payment(pid="777")], [deposit(pid="501")], [])
    assert verdict.counts["uncredited"] == 1
    assert "payment 777" in verdict.violations[0]


def test_a_payment_credited_twice_is_caught() -> None:
    verdict = reconcile_provider([payment()], [deposit()], [credit("40"), credit("41")])
    assert verdict.counts["credited_twice"] == 1
    assert "payment 501" in verdict.violations[0]
    assert "40, 41" in verdict.violations[0]


@pytest.mark.parametrize(
    "wrong", [credit(amount="0.1"), credit(user=OTHER)], ids=["amount", "user"]
)
def test_a_payment_credited_wrongly_is_caught(wrong: DepositCredit) -> None:
    verdict = reconcile_provider([payment()], [deposit()], [wrong])
    assert verdict.counts["wrong_amount"] == 1
    assert "payment 501" in verdict.violations[0]
    assert "transaction 40" in verdict.violations[0]


@pytest.mark.parametrize("status", ["waiting", "confirming", None], ids=str)
def test_a_credit_without_a_finished_payment_is_caught(status: str | None) -> None:
    payments = [payment(status)] if status else []
    verdict = reconcile_provider(payments, [deposit("finished")], [credit("40")])
    assert verdict.counts["credits_without_payment"] == 1
    assert any("transaction 40" in v for v in verdict.violations)


def test_credits_from_before_the_run_count_only_for_their_payment() -> None:
    old = DepositCredit("3", "e0000000-0000-4000-8000-000000000009", USER, "BTC", Decimal(1),
                        recent=False)  # fmt: skip
    verdict = reconcile_provider([payment()], [deposit()], [credit(), old])
    assert verdict.passed, verdict.violations
    assert verdict.counts["credits"] == 1
