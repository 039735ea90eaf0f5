"""``no_toxic_left``: every fault of the run was reverted."""

from __future__ import annotations

from isolation_harness.chaos.invariants.base import Facts, InvariantResult, invariant

NAME = "no_toxic_left"


@invariant(NAME)
def no_toxic_left(found: Facts) -> InvariantResult:
    """Nothing the run applied is still in place after its reverts (a toxic, a disabled
    link, a service fault mode, a database left down): the run's residue scan, over the
    stack's links."""
    return InvariantResult.of(NAME, found.links, list(found.residue))
