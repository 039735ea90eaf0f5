"""Faults: one module per family, each kind one class that is its scenario entry, its
validation, ``apply``/``revert``/``active``, its target and its effect's signature.

    fault = LinkDown(link="pg_p2p")
    try:
        await fault.apply(ctx)
        ...                                  # the phase runs
    finally:
        await fault.revert(ctx)
    assert not await fault.active(ctx)
    assert await residue(ctx) == []

A new kind is one new module with a :class:`Fault` subclass (see :mod:`chaos.faults.base`),
imported here, and its entry in ``docs/scenarios.md``.
"""

from isolation_harness.chaos.faults.base import (
    KINDS,
    PROVIDER_SERVICE,
    Fault,
    FaultEntry,
    LinkName,
    Moment,
    ServiceName,
    Signature,
    fault_of,
)
from isolation_harness.chaos.faults.context import FaultContext
from isolation_harness.chaos.faults.control import HTTP_TIMEOUT
from isolation_harness.chaos.faults.residue import residue

# isort: off
# The kinds, in the order scenario errors list them (each registers as it is defined).
from isolation_harness.chaos.faults.links import (
    LinkDown,
    Toxic,
    checked_link,
    legacy_refusal,
    link_service,
)
from isolation_harness.chaos.faults.service import Recycle, ServiceFault
from isolation_harness.chaos.faults.database import DB_TIMEOUT, DbCrash, DbRestart, DbStop
from isolation_harness.chaos.faults.provider import PROVIDER_MODES, ProviderFault
# isort: on

__all__ = [
    "DB_TIMEOUT",
    "HTTP_TIMEOUT",
    "KINDS",
    "PROVIDER_MODES",
    "PROVIDER_SERVICE",
    "DbCrash",
    "DbRestart",
    "DbStop",
    "Fault",
    "FaultContext",
    "FaultEntry",
    "LinkDown",
    "LinkName",
    "Moment",
    "ProviderFault",
    "Recycle",
    "ServiceFault",
    "ServiceName",
    "Signature",
    "Toxic",
    "checked_link",
    "fault_of",
    "legacy_refusal",
    "link_service",
    "residue",
]
