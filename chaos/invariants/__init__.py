"""The invariants checked after a run: is every acknowledged operation there, and no money
lost? One module per invariant, each registering its check by name
(:func:`~chaos.invariants.base.invariant`); :mod:`.facts` reads what they judge, and
:mod:`.oracle` compares it, pure.

A new invariant is one new module, imported here, and its entry in ``docs/scenarios.md``
(see :mod:`chaos.invariants.base`).
"""

from isolation_harness.chaos.invariants.base import (
    EPOCH,
    REGISTRY,
    Facts,
    InvariantKind,
    InvariantResult,
    canonical,
    exercised_by,
    invariant,
    names,
)
from isolation_harness.chaos.invariants.check import check_invariants

# isort: off
# The invariants, in the order a run checks them (each registers as it is defined).
from isolation_harness.chaos.invariants.no_operation_lost import NAME as NO_OPERATION_LOST
from isolation_harness.chaos.invariants.provider_reconciled import NAME as PROVIDER_RECONCILED
from isolation_harness.chaos.invariants import (
    ledger_balanced,
    no_negative_balance,
    escrow_consistent,
)
from isolation_harness.chaos.invariants import connections, no_toxic_left
# isort: on

__all__ = [
    "EPOCH",
    "NO_OPERATION_LOST",
    "PROVIDER_RECONCILED",
    "REGISTRY",
    "Facts",
    "InvariantKind",
    "InvariantResult",
    "canonical",
    "check_invariants",
    "connections",
    "escrow_consistent",
    "exercised_by",
    "invariant",
    "ledger_balanced",
    "names",
    "no_negative_balance",
    "no_toxic_left",
]
