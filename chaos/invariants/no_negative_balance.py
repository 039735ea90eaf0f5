"""``no_negative_balance``: no account but the system's is below zero."""

from __future__ import annotations

from isolation_harness.chaos.invariants.base import Facts, InvariantResult, invariant

NAME = "no_negative_balance"


@invariant(NAME)
def no_negative_balance(found: Facts) -> InvariantResult:
    """Users', escrow and platform accounts never go negative (the system accounts stand
    for the outside world and may)."""
    violations = [
        f"account {aid} ({owner} {ccy} {kind}) is negative: {balance}"
        for aid, owner, ccy, kind, balance in found.rows(
            "SELECT id, owner, currency, kind, balance FROM wallet.accounts "
            "WHERE kind <> 'system' AND balance < 0"
        )
    ]
    checked = found.rows("SELECT count(*) FROM wallet.accounts WHERE kind <> 'system'")[0][0]
    return InvariantResult.of(NAME, int(checked), violations)
