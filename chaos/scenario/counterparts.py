"""An isolation claim and its legacy counterpart: the pairing that shows the harness catches
the old design for the reason the source document gives, and not for a fault that would
break any design.

An isolated scenario that claims isolation names (``legacy: {counterpart: FILE}``) a
scenario that runs the same claim on the legacy design. The counterpart must:

- run on the legacy design (``variant: legacy``);
- confine every fault to some services' own code paths (a service fault, a provider link):
  a fault on the database or on the shared link hits every service, so no isolation proof
  may rest on it;
- expect to fail (``expect: {fail: [...]}``) with a breach of a service its faults do not
  target in that phase: the bystander that the shared pool, the missing acquire timeout
  and the missing error boundary let the fault reach.
"""

from __future__ import annotations

from isolation_harness.chaos.scenario.model import Scenario
from isolation_harness.load.kinds import service_of


def counterpart_problems(counterpart: Scenario) -> list[str]:
    """What makes ``counterpart`` unfit to stand for an isolation claim on the legacy design
    (empty: fit)."""
    problems: list[str] = []
    if counterpart.variant != "legacy":
        problems.append(f"{counterpart.name} must run on the legacy design (variant: legacy)")
    for phase in counterpart.timeline:
        for fault in phase.faults:
            if fault.target_service is None:
                problems.append(
                    f"{counterpart.name}: phase {phase.name}: a {fault.type} fault hits every "
                    "service, so no isolation proof may rest on it; confine the fault to one "
                    "service's code (type: service)"
                )
    if not bystander_breaches(counterpart):
        problems.append(
            f"{counterpart.name} must expect a breach of a service its faults do not target "
            "(expect: {fail: [{isolation: deposits, phase: ...}]} or a threshold of such a "
            "service's requests), so that its failure shows the shared design reaching a "
            "bystander"
        )
    return problems


def bystander_breaches(scenario: Scenario) -> list[str]:
    """The expected failures of ``scenario`` that name a service outside the targets of the
    faults of their phase (their names)."""
    found: list[str] = []
    for expected in scenario.expected_failures:
        if expected.phase is None:
            continue  # an invariant: judged on the whole run
        phase = next((p for p in scenario.timeline if p.name == expected.phase.split("@")[0]),
                     None)  # fmt: skip
        if phase is None or not phase.faults:
            continue
        targets = {fault.target_service for fault in phase.faults}
        if expected.isolation is not None:
            service: str | None = expected.isolation
        else:
            prefix = (expected.group or "*").split(".")[0]
            service = None if "*" in prefix else service_of(prefix)
        if service is not None and service not in targets and None not in targets:
            found.append(expected.name)
    return found
