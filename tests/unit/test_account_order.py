"""Every posting creates and locks its accounts in one order, by natural key, so that two
first movements creating the same accounts at once (two worker processes, whose sets of
accounts iterate in different orders) wait for each other in turn and never deadlock."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal

from isolation_harness.reference_app.services.wallet.domain import (
    PLATFORM_REVENUE,
    SWAP_DESK,
    AccountRef,
    Leg,
    accounts_of,
    transfer,
)

USER = uuid.UUID(int=7)
LEGS = [
    Leg(AccountRef.available(USER, "BTC"), Decimal("-1")),
    Leg(AccountRef.system(SWAP_DESK, "BTC"), Decimal("0.99")),
    Leg(AccountRef.system(PLATFORM_REVENUE, "BTC"), Decimal("0.01")),
    *transfer(AccountRef.system(SWAP_DESK, "USDT"), AccountRef.available(USER, "USDT"), Decimal(5)),
]
#: the creation order in another interpreter, with its own hash seed
PROBE = """
import json, sys, uuid
from decimal import Decimal
from isolation_harness.reference_app.services.wallet.domain import (
    PLATFORM_REVENUE, SWAP_DESK, AccountRef, Leg, accounts_of, transfer)
user = uuid.UUID(int=7)
legs = [Leg(AccountRef.available(user, "BTC"), Decimal("-1")),
        Leg(AccountRef.system(SWAP_DESK, "BTC"), Decimal("0.99")),
        Leg(AccountRef.system(PLATFORM_REVENUE, "BTC"), Decimal("0.01")),
        *transfer(AccountRef.system(SWAP_DESK, "USDT"), AccountRef.available(user, "USDT"),
                  Decimal(5))]
key = lambda a: [a.owner, a.currency, a.kind.value, a.slot]
print(json.dumps({"sorted": [key(a) for a in accounts_of(legs)],
                  "set": [key(a) for a in {leg.account for leg in legs}]}))
"""


def key(account: AccountRef) -> tuple[str, str, str, int]:
    return (account.owner, account.currency, account.kind.value, account.slot)


def test_the_order_is_the_natural_key_s_whatever_the_legs_order() -> None:
    expected = sorted({key(leg.account) for leg in LEGS})
    for legs in itertools.permutations(LEGS):
        assert [key(a) for a in accounts_of(list(legs))] == expected


def test_processes_with_other_hash_seeds_create_in_the_same_order() -> None:
    found = []
    for seed in ("1", "2", "3", "4", "5", "6"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                              text=True, timeout=60, check=True)  # fmt: skip
        found.append(json.loads(done.stdout))
    assert len({json.dumps(f["sorted"]) for f in found}) == 1
    # what a set gave them: not one order (the deadlock this prevents)
    assert len({json.dumps(f["set"]) for f in found}) > 1
