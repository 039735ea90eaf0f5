"""``no_operation_lost``: the client's record against the database (Jepsen's checker)."""

from __future__ import annotations

from isolation_harness.chaos.invariants.base import EPOCH, Facts, InvariantResult, invariant
from isolation_harness.chaos.invariants.facts import stored_operations
from isolation_harness.chaos.invariants.oracle import judge_operations

NAME = "no_operation_lost"


@invariant(
    NAME,
    needs={"deposits", "wallet", "p2p", "swap", "express", "admin"},
    reads_provider=True,  # a deposit is credited by the provider's IPN
    aliases=("acknowledged_deposits_exist",),
)
def no_operation_lost(found: Facts) -> InvariantResult:
    """Nothing acknowledged lost, nothing stored that no request explains, nothing applied
    twice (:func:`~chaos.invariants.oracle.judge_operations`)."""
    stored = stored_operations(found.cursor, found.since or EPOCH)
    verdict = judge_operations(found.operations, stored)
    return InvariantResult(
        NAME, verdict.passed, verdict.counts["checked"], verdict.violations, verdict.counts
    )
