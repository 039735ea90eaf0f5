"""``connections_return_to_baseline``: no connection left behind after the load."""

from __future__ import annotations

import time
from collections import defaultdict

from isolation_harness.chaos.invariants.base import Facts, InvariantResult, invariant

NAME = "connections_return_to_baseline"
#: a connection is left behind if it is still busy (or too many) this long after the first
#: look: the background service's periodic jobs run a statement now and then, load or not
SETTLE_SECONDS = 2.0


@invariant(NAME)
def connections_released(found: Facts, settle: float = SETTLE_SECONDS) -> InvariantResult:
    """With the load stopped, nothing stays busy or stuck in a transaction, and no pool
    holds more connections than its configured capacity.

    A statement that ends within ``settle`` seconds is work going on, not a leftover: the
    check looks again every 0.1 s and fails only if some violation never went away.
    """
    deadline = time.monotonic() + settle
    while True:
        total, violations = _connections_now(found)
        if not violations or time.monotonic() >= deadline:
            return InvariantResult.of(NAME, total, violations)
        time.sleep(0.1)


def _connections_now(found: Facts) -> tuple[int, list[str]]:
    capacity = found.capacity
    violations: list[str] = []
    rows = found.rows(
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
