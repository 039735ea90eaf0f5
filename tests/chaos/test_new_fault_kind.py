"""A new fault kind is one class: scenario files name it, the runner applies and reverts it,
the judge judges its effect by its signature, with nothing else to change."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, Literal

import pytest

from isolation_harness.chaos.errors import EXIT_INVALID
from isolation_harness.chaos.faults import (
    KINDS,
    Fault,
    FaultContext,
    Moment,
    ServiceName,
    Signature,
)
from isolation_harness.chaos.run.runner import run_scenario
from isolation_harness.chaos.scenario.model import Scenario
from tests.plugins.preflight import test_settings

CALLS: list[str] = []
#: seconds the trivial fault takes to apply
TAKES_HOLD = 1.0


@pytest.fixture
def noop_kind() -> Iterator[type[Fault]]:
    """A trivial kind that breaks nothing and says so, defined here and nowhere else."""

    class Noop(Fault):
        """Pretend to break ``service``: nothing happens."""

        type: Literal["noop"] = "noop"
        service: ServiceName

        @property
        def target_service(self) -> str | None:
            return self.service

        @property
        def signature(self) -> Signature:
            return Signature("target")

        def describe(self, ctx: FaultContext | None = None) -> str:
            return f"nothing done to {self.service}"

        async def apply(self, ctx: FaultContext) -> None:
            CALLS.append("apply")
            await asyncio.sleep(TAKES_HOLD)  # slow to take hold, as a leak on a busy machine

        async def revert(self, ctx: FaultContext) -> None:
            CALLS.append("revert")

        async def active(self, ctx: FaultContext) -> bool:
            return False

        async def observe(self, ctx: FaultContext, when: Moment) -> dict[str, Any]:
            return {f"seen_{when}": True}

    CALLS.clear()
    try:
        yield Noop
    finally:
        KINDS.pop("noop", None)


SCENARIO = {
    "name": "noop",
    "load": {"users": 4, "spawn_rate": 4, "mix": {"deposits": 1, "wallet": 1}},
    "timeline": [
        {"phase": "baseline", "duration": "2s"},
        {"phase": "nothing", "duration": "2s", "faults": [{"type": "noop", "service": "p2p"}]},
    ],
    "thresholds": "none",
    "invariants": "none",
}


def test_a_kind_defined_in_a_test_file_runs_end_to_end(noop_kind: type[Fault]) -> None:
    scenario = Scenario.model_validate(SCENARIO)
    assert type(scenario.timeline[1].faults[0]) is noop_kind
    settings = test_settings().with_overrides(app_workers=1)
    record = asyncio.run(run_scenario(scenario, settings))
    assert CALLS == ["apply", "revert"]
    [fault] = record.phases[1].faults
    assert (fault.kind, fault.target, fault.description) == ("noop", "p2p", "nothing done to p2p")
    assert fault.evidence == {"seen_before": True, "seen_after": True, "seen_reverted": True}
    # the phase lasted its 2 s under the fault, not 2 s less the time it took to apply
    phase = record.phases[1]
    [applied] = [event["at"] for event in phase.events if "applied" in event]
    assert applied - phase.start >= TAKES_HOLD
    assert fault.reverted_at is not None
    assert fault.reverted_at - applied >= 2.0
    # it broke nothing: the judge, reading its signature, finds no effect and the run proves
    # nothing (invalid), the way it would for a real fault that did not bite
    assert record.outcome.exit_code() == EXIT_INVALID
    assert any("fault had an effect: nothing done to p2p" in r for r in record.outcome.reasons())


def test_a_kind_named_twice_is_refused(noop_kind: type[Fault]) -> None:
    with pytest.raises(TypeError, match="fault type 'noop' is defined twice"):

        class Other(Fault):
            type: Literal["noop"] = "noop"
