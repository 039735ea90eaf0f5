"""Short versions of the isolation scenarios, on both designs: PASS on the isolated one, and
on the legacy one each claim's counterpart fails with the bystander's breach it names,
caused by the old design's mechanism (no fault on the shared link or the database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from isolation_harness.chaos.errors import EXIT_PASS, EXIT_THRESHOLD
from isolation_harness.chaos.run.record import RunRecord
from isolation_harness.chaos.run.runner import run_scenario
from isolation_harness.chaos.scenario.counterparts import bystander_breaches
from isolation_harness.chaos.scenario.loader import load_scenario
from isolation_harness.chaos.scenario.model import Scenario
from isolation_harness.chaos.stack.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ISOLATION = [
    "deposits-survive-p2p-outage",
    "deposits-while-swap-broken",
    "deposits-while-p2p-link-slow",
    "deposits-while-p2p-leaks-its-pool",
    "wallet-while-swap-broken",
]
PHASE_SECONDS = 4.0
USERS = 24
#: seconds each user pauses between two requests: about 60 requests a second in all, some
#: 240 per phase, with the machine free for the rest of the suite
THINK_TIME = (0.1, 0.6)


def short(scenario: Scenario, seconds: float = PHASE_SECONDS) -> Scenario:
    """The same story, in phases of ``seconds`` with fewer, slower users (CI has two shared
    cores, and the rest of the suite runs beside it; the library's files are judged at full
    length by ``make gate``)."""
    load = scenario.load.model_copy(
        update={
            "users": USERS,
            "spawn_rate": float(USERS * 4),  # spawned in a quarter of a second
            "think_time": scenario.load.think_time or THINK_TIME,
        }
    )
    return in_phases_of(seconds, scenario).model_copy(update={"load": load})


def in_phases_of(seconds: float, scenario: Scenario) -> Scenario:
    """``scenario`` with every phase ``seconds`` long."""
    timeline = tuple(p.model_copy(update={"duration": seconds}) for p in scenario.timeline)
    return scenario.model_copy(update={"timeline": timeline})


def describe(record: RunRecord) -> str:
    return "\n".join([f"exit {record.outcome.exit_code()}", *record.outcome.reasons()])


async def run_short(name: str, variant: str) -> RunRecord:
    scenario = short(load_scenario(ROOT / "scenarios" / f"{name}.yaml")).with_variant(variant)
    settings = Settings.from_env({}).with_overrides(app_workers=1)
    return await run_scenario(scenario, settings)


#: the database faults: every service is their target, and "serves again within 2 s" is
#: judged as a window of the faulted phase
DATABASE = ["postgres-restart-immediate", "postgres-crash"]


@pytest.mark.parametrize("name", ISOLATION + DATABASE)
async def test_isolated_design_passes(name: str) -> None:
    record = await run_short(name, "isolated")
    assert record.outcome.exit_code() == EXIT_PASS, describe(record)
    assert record.residue == []
    assert all(i.passed for i in record.outcome.invariants)


#: every legacy counterpart the shipped scenarios name
COUNTERPARTS = sorted(
    (ROOT / "scenarios" / scenario.legacy.counterpart).resolve()
    for scenario in map(load_scenario, sorted((ROOT / "scenarios").glob("*.yaml")))
    if scenario.legacy is not None and scenario.legacy.counterpart is not None
)


@pytest.mark.parametrize("path", COUNTERPARTS, ids=lambda p: p.stem)
async def test_legacy_counterpart_fails_with_the_breach_it_names(path: Path) -> None:
    full = load_scenario(path)
    # The file's load (sized to outnumber the shared pool) in short phases. The starved
    # old design is never ready again, which is not what a counterpart proves: the wait for
    # it is cut to a second.
    scenario = in_phases_of(PHASE_SECONDS, full).model_copy(update={"ready_within": 1.0})
    assert scenario.variant == "legacy"
    record = await run_scenario(scenario, Settings.from_env({}).with_overrides(app_workers=1))
    outcome = record.outcome
    # Every named breach happened, nothing else went wrong (invariants, validity, harness).
    assert outcome.exit_code() == EXIT_PASS, describe(record)
    assert outcome.raw_code == EXIT_THRESHOLD, describe(record)
    assert outcome.expectations
    assert all(e.happened for e in outcome.expectations)
    # The breaches are a bystander's, and no fault of the run hit every service.
    assert bystander_breaches(scenario) == [e.name for e in outcome.expectations]
    faults = [fault for phase in record.phases for fault in phase.faults]
    assert faults
    assert all(fault.target is not None for fault in faults)
    assert record.residue == []
    assert not outcome.harness_errors


async def test_payments_finished_after_their_deposit_expired_are_credited() -> None:
    """The app expires deposits after 3 s; payers pay later, and the provider's book, read
    by the runner after the load, shows every finished payment credited once, late ones
    included (the broken build that refuses them: tests/chaos/test_broken_builds.py)."""
    scenario = load_scenario(ROOT / "scenarios" / "late-payment-after-expiry.yaml")
    settings = Settings.from_env({}).with_overrides(app_workers=1)
    record = await run_scenario(scenario, settings)
    outcome = record.outcome
    assert outcome.exit_code() == EXIT_PASS, describe(record)
    results = {i.name: i for i in outcome.invariants}
    reconciled = results["provider_reconciled"]
    assert reconciled.passed, reconciled.violations
    assert reconciled.counts["credited"] >= 1
    assert all(i.passed for i in outcome.invariants)
    assert record.operations["acknowledged"] > 0


#: the file's thresholds on capacity: what 120 users without a pause get from one app
#: worker is the machine's speed (latency is users / throughput), judged by the gate at full
#: length; beside the rest of the suite, in a phase of 8 s, it measures the suite
CAPACITY = ("p99 < 2s", "count > 500")


async def test_120_depositors_keep_100_requests_in_flight_without_an_acquire_timeout() -> None:
    """The source document's 100 concurrent requests without pool exhaustion: measured on
    the client (requests in flight at once) and on the server (acquires that gave up), with
    no request failing."""
    scenario = load_scenario(ROOT / "scenarios" / "depositors-120-pool-bounded.yaml")
    timeline = tuple(p.model_copy(update={"duration": 8.0}) for p in scenario.timeline)
    thresholds = {
        group: {
            phase: tuple(t for t in listed if t.text not in CAPACITY)
            for phase, listed in phases.items()
        }
        for group, phases in scenario.thresholds.items()
    }
    assert thresholds != scenario.thresholds  # the capacity thresholds were there, and are out
    record = await run_scenario(
        # without its capacity limits it need not have the machine to itself
        scenario.model_copy(
            update={"timeline": timeline, "thresholds": thresholds, "alone": False}
        ),
        Settings.from_env({}).with_overrides(app_workers=1),
    )
    assert record.outcome.exit_code() == EXIT_PASS, describe(record)
    measured = {t.expression: t.measured for t in record.outcome.thresholds}
    assert measured["in_flight_max >= 100"] is not None
    assert measured["in_flight_max >= 100"] >= 100
    assert measured["acquire_timeouts == 0"] == 0
