"""``provider_reconciled``: the payment provider's book against the ledger."""

from __future__ import annotations

from isolation_harness.chaos.invariants.base import EPOCH, Facts, InvariantResult, invariant
from isolation_harness.chaos.invariants.facts import deposit_facts
from isolation_harness.chaos.invariants.oracle import reconcile_provider

NAME = "provider_reconciled"


@invariant(NAME, needs={"deposits"}, reads_provider=True)
def provider_reconciled(found: Facts) -> InvariantResult:
    """Every payment the provider finished is credited once, with its amount, and nothing
    is credited without one (:func:`~chaos.invariants.oracle.reconcile_provider`)."""
    if found.payments is None:
        return InvariantResult.of(NAME, 0, ["the payment provider's book could not be read"])
    payments = found.payments
    deposits, credits = deposit_facts(
        found.cursor, [p.payment_id for p in payments], found.since or EPOCH
    )
    verdict = reconcile_provider(payments, deposits, credits)
    return InvariantResult(
        NAME, verdict.passed, verdict.counts["finished"], verdict.violations, verdict.counts
    )
