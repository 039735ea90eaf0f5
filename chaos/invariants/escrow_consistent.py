"""``escrow_consistent``: every escrow lock is held, released or unlocked, never two."""

from __future__ import annotations

from collections import defaultdict

from isolation_harness.chaos.invariants.base import Facts, InvariantResult, invariant

NAME = "escrow_consistent"


@invariant(NAME, needs={"p2p"})
def escrow_consistent(found: Facts) -> InvariantResult:
    """Checked against the ledger: a held lock has its locking transaction and no closing
    one; a released or unlocked lock has exactly one closing transaction of its own kind;
    and the escrow balances equal the sum of the held locks."""
    violations: list[str] = []
    closing: dict[str, list[str]] = defaultdict(list)
    locking: set[str] = set()
    for reference, kind in found.rows(
        "SELECT reference, kind FROM wallet.transactions "
        "WHERE kind IN ('escrow_lock', 'escrow_release', 'escrow_unlock')"
    ):
        if kind == "escrow_lock":
            locking.add(reference)
        else:
            closing[reference].append(kind)
    locks = found.rows("SELECT reference, state FROM wallet.escrow_locks")
    expected = {"held": [], "released": ["escrow_release"], "unlocked": ["escrow_unlock"]}
    for reference, state in locks:
        if reference not in locking:
            violations.append(f"escrow {reference} has no locking transaction")
        if sorted(closing.get(reference, [])) != expected[state]:
            closed_by = ", ".join(closing.get(reference, [])) or "none"
            violations.append(f"escrow {reference} is {state} but was closed by: {closed_by}")
    violations += [
        f"escrow of {owner} in {ccy}: balance {balance} but held locks sum to {held}"
        for owner, ccy, balance, held in found.rows(
            "SELECT a.owner, a.currency, a.balance, coalesce(sum(l.amount), 0) "
            "FROM wallet.accounts a LEFT JOIN wallet.escrow_locks l "
            "ON l.owner::text = a.owner AND l.currency = a.currency AND l.state = 'held' "
            "WHERE a.kind = 'escrow' GROUP BY a.id HAVING a.balance <> coalesce(sum(l.amount), 0)"
        )
    ]
    return InvariantResult.of(NAME, len(locks), violations)
