"""The invariants oracle: after a run, is every acknowledged operation there and no money lost?

Checked on the database directly (the superuser's connection, not through any link), after
the load stopped and every fault was reverted. Each check returns what it looked at and every
violation it found, with ids, so a failure can be chased. The money checks judge the
client's own record (``no_operation_lost``) and the payment provider's book
(``provider_reconciled``) against the facts :mod:`chaos.run.facts` reads; the comparisons are
:mod:`chaos.judge.oracle`'s, pure.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg2

from chaos.judge.oracle import ProviderPayment, Verdict, judge_operations, reconcile_provider
from chaos.judge.verdicts import InvariantResult
from chaos.run import facts
from chaos.stack import postgres
from load.operations import Operation

#: application_name of each pool -> how many connections its pools may hold in all
Capacity = Mapping[str, int]
NO_OPERATION_LOST = "no_operation_lost"
PROVIDER_RECONCILED = "provider_reconciled"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _result(name: str, checked: int, violations: list[str]) -> InvariantResult:
    return InvariantResult(name, not violations, checked, violations)


def _rows(cur: Any, query: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
    cur.execute(query, params)
    return list(cur.fetchall())


def no_operation_lost(
    cur: Any, operations: Sequence[Operation], since: datetime | None
) -> InvariantResult:
    """The client's record against the database: nothing acknowledged lost, nothing stored
    that no request explains, nothing applied twice (:func:`judge_operations`)."""
    stored = facts.stored_operations(cur, since or EPOCH)
    verdict = judge_operations(operations, stored)
    return _judged(NO_OPERATION_LOST, verdict, verdict.counts["checked"])


def provider_reconciled(
    cur: Any, payments: Sequence[ProviderPayment] | None, since: datetime | None
) -> InvariantResult:
    """The payment provider's book against the ledger (:func:`reconcile_provider`)."""
    if payments is None:
        return _result(PROVIDER_RECONCILED, 0, ["the payment provider's book could not be read"])
    deposits, credits = facts.deposit_facts(cur, [p.payment_id for p in payments], since or EPOCH)
    verdict = reconcile_provider(payments, deposits, credits)
    return _judged(PROVIDER_RECONCILED, verdict, verdict.counts["finished"])


def _judged(name: str, verdict: Verdict, checked: int) -> InvariantResult:
    return InvariantResult(name, verdict.passed, checked, verdict.violations, verdict.counts)


def ledger_balanced(cur: Any) -> InvariantResult:
    """Double entry: every transaction sums to zero per currency, and balances match entries."""
    violations = [
        f"transaction {tid} does not balance in {ccy}: {total}"
        for tid, ccy, total in _rows(
            cur,
            "SELECT transaction_id, currency, sum(amount) FROM wallet.entries "
            "GROUP BY transaction_id, currency HAVING sum(amount) <> 0",
        )
    ]
    violations += [
        f"the ledger does not balance in {ccy}: {total}"
        for ccy, total in _rows(
            cur, "SELECT currency, sum(amount) FROM wallet.entries GROUP BY currency "
            "HAVING sum(amount) <> 0",
        )
    ]  # fmt: skip
    violations += [
        f"account {aid} ({owner} {ccy} {kind}) holds {balance} but its entries sum to {total}"
        for aid, owner, ccy, kind, balance, total in _rows(
            cur,
            "SELECT a.id, a.owner, a.currency, a.kind, a.balance, coalesce(sum(e.amount), 0) "
            "FROM wallet.accounts a LEFT JOIN wallet.entries e ON e.account_id = a.id "
            "GROUP BY a.id HAVING a.balance <> coalesce(sum(e.amount), 0)",
        )
    ]
    checked = _rows(cur, "SELECT count(*) FROM wallet.transactions")[0][0]
    return _result("ledger_balanced", int(checked), violations)


def no_negative_balance(cur: Any) -> InvariantResult:
    violations = [
        f"account {aid} ({owner} {ccy} {kind}) is negative: {balance}"
        for aid, owner, ccy, kind, balance in _rows(
            cur,
            "SELECT id, owner, currency, kind, balance FROM wallet.accounts "
            "WHERE kind <> 'system' AND balance < 0",
        )
    ]
    checked = _rows(cur, "SELECT count(*) FROM wallet.accounts WHERE kind <> 'system'")[0][0]
    return _result("no_negative_balance", int(checked), violations)


def escrow_consistent(cur: Any) -> InvariantResult:
    """Every escrow lock is held, or released, or unlocked: never two of them.

    Checked against the ledger: a held lock has its locking transaction and no closing one;
    a released or unlocked lock has exactly one closing transaction of its own kind; and the
    escrow balances equal the sum of the held locks.
    """
    violations: list[str] = []
    closing: dict[str, list[str]] = defaultdict(list)
    locking: set[str] = set()
    for reference, kind in _rows(
        cur,
        "SELECT reference, kind FROM wallet.transactions "
        "WHERE kind IN ('escrow_lock', 'escrow_release', 'escrow_unlock')",
    ):
        if kind == "escrow_lock":
            locking.add(reference)
        else:
            closing[reference].append(kind)
    locks = _rows(cur, "SELECT reference, state FROM wallet.escrow_locks")
    expected = {"held": [], "released": ["escrow_release"], "unlocked": ["escrow_unlock"]}
    for reference, state in locks:
        if reference not in locking:
            violations.append(f"escrow {reference} has no locking transaction")
        if sorted(closing.get(reference, [])) != expected[state]:
            found = ", ".join(closing.get(reference, [])) or "none"
            violations.append(f"escrow {reference} is {state} but was closed by: {found}")
    violations += [
        f"escrow of {owner} in {ccy}: balance {balance} but held locks sum to {held}"
        for owner, ccy, balance, held in _rows(
            cur,
            "SELECT a.owner, a.currency, a.balance, coalesce(sum(l.amount), 0) "
            "FROM wallet.accounts a LEFT JOIN wallet.escrow_locks l "
            "ON l.owner::text = a.owner AND l.currency = a.currency AND l.state = 'held' "
            "WHERE a.kind = 'escrow' GROUP BY a.id HAVING a.balance <> coalesce(sum(l.amount), 0)",
        )
    ]
    return _result("escrow_consistent", len(locks), violations)


#: a connection is left behind if it is still busy (or too many) this long after the first
#: look: the background service's periodic jobs run a statement now and then, load or not
SETTLE_SECONDS = 2.0


def connections_released(
    cur: Any, capacity: Capacity, settle: float = SETTLE_SECONDS
) -> InvariantResult:
    """No connection left behind: with the load stopped, nothing stays busy or stuck in a
    transaction, and no pool holds more connections than its configured capacity.

    A statement that ends within ``settle`` seconds is work going on, not a leftover: the
    check looks again every 0.1 s and fails only if some violation never went away.
    """
    deadline = time.monotonic() + settle
    while True:
        total, violations = _connections_now(cur, capacity)
        if not violations or time.monotonic() >= deadline:
            return _result("connections_return_to_baseline", total, violations)
        time.sleep(0.1)


def _connections_now(cur: Any, capacity: Capacity) -> tuple[int, list[str]]:
    violations: list[str] = []
    rows = _rows(
        cur,
        "SELECT application_name, state, count(*) FROM pg_stat_activity "
        "WHERE application_name = ANY(%s) AND pid <> pg_backend_pid() "
        "GROUP BY application_name, state",
        (list(capacity),),
    )
    totals: dict[str, int] = defaultdict(int)
    for name, state, count in rows:
        totals[name] += count
        if state != "idle":
            violations.append(f"{name}: {count} connection(s) still {state}")
    violations += [
        f"{name}: {total} connections, more than its pools may hold ({capacity[name]})"
        for name, total in totals.items()
        if total > capacity[name]
    ]
    return sum(totals.values()), violations


CHECKS: dict[str, Callable[..., InvariantResult]] = {
    NO_OPERATION_LOST: no_operation_lost,
    PROVIDER_RECONCILED: provider_reconciled,
    "ledger_balanced": ledger_balanced,
    "no_negative_balance": no_negative_balance,
    "escrow_consistent": escrow_consistent,
    "connections_return_to_baseline": connections_released,
}


def check_database(
    admin_dsn: str,
    names: Sequence[str],
    *,
    operations: Sequence[Operation],
    capacity: Capacity,
    since: datetime | None = None,
    payments: Sequence[ProviderPayment] | None = None,
) -> list[InvariantResult]:
    """Run the database invariants among ``names`` (the others are the runner's).

    ``operations`` is the client's record of the run, ``since`` the database's time when
    it began (stored operations before it are not the run's), ``payments`` the payment
    provider's book (None: it could not be read).
    """
    conn = postgres.connect(admin_dsn, timeout=5)
    results = []
    try:
        with conn.cursor() as cur:
            for name in names:
                check = CHECKS.get(name)
                if check is None:
                    continue
                try:
                    if name == NO_OPERATION_LOST:
                        results.append(check(cur, operations, since))
                    elif name == PROVIDER_RECONCILED:
                        results.append(check(cur, payments, since))
                    elif name == "connections_return_to_baseline":
                        results.append(check(cur, capacity))
                    else:
                        results.append(check(cur))
                except psycopg2.Error as exc:
                    results.append(_result(name, 0, [f"could not check: {exc}".strip()]))
    finally:
        conn.close()
    return results
