"""``ledger_balanced``: double entry holds."""

from __future__ import annotations

from isolation_harness.chaos.invariants.base import Facts, InvariantResult, invariant

NAME = "ledger_balanced"


@invariant(NAME)
def ledger_balanced(found: Facts) -> InvariantResult:
    """Every transaction sums to zero per currency, so does the whole ledger, and every
    account's balance is the sum of its entries."""
    violations = [
        f"transaction {tid} does not balance in {ccy}: {total}"
        for tid, ccy, total in found.rows(
            "SELECT transaction_id, currency, sum(amount) FROM wallet.entries "
            "GROUP BY transaction_id, currency HAVING sum(amount) <> 0"
        )
    ]
    violations += [
        f"the ledger does not balance in {ccy}: {total}"
        for ccy, total in found.rows(
            "SELECT currency, sum(amount) FROM wallet.entries GROUP BY currency "
            "HAVING sum(amount) <> 0"
        )
    ]
    violations += [
        f"account {aid} ({owner} {ccy} {kind}) holds {balance} but its entries sum to {total}"
        for aid, owner, ccy, kind, balance, total in found.rows(
            "SELECT a.id, a.owner, a.currency, a.kind, a.balance, coalesce(sum(e.amount), 0) "
            "FROM wallet.accounts a LEFT JOIN wallet.entries e ON e.account_id = a.id "
            "GROUP BY a.id HAVING a.balance <> coalesce(sum(e.amount), 0)"
        )
    ]
    checked = found.rows("SELECT count(*) FROM wallet.transactions")[0][0]
    return InvariantResult.of(NAME, int(checked), violations)
