"""The gate against deliberately broken builds: each is caught by the verdict made for it,
with the right exit code and a reason naming that verdict.

A broken build is the reference app with one patch, applied in its own process only: a
``sitecustomize`` module on ``PYTHONPATH`` that Python imports at start-up patches the app
when the process is ``python -m isolation_harness.reference_app`` (its workers are forked
from it, patch included; never the fakes, Locust or the harness).
The patches live here, in the tests, never in the product.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest

from isolation_harness.chaos.errors import (
    EXIT_HARNESS_ERROR,
    EXIT_INVALID,
    EXIT_INVARIANT,
    EXIT_THRESHOLD,
)
from isolation_harness.chaos.run.record import RunRecord
from isolation_harness.chaos.run.runner import run_scenario
from isolation_harness.chaos.scenario.loader import load_scenario
from isolation_harness.chaos.stack.settings import Settings
from tests.chaos.test_scenarios import ROOT, describe, short

SITECUSTOMIZE = """\
import sys

# the app's server, before its workers fork
if sys.orig_argv[1:3] == ["-m", "isolation_harness.reference_app"]:
{patch}
"""


@pytest.fixture
def broken_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``broken_build(patch)``: the next stacks' app runs with ``patch`` (Python source)."""

    def install(patch: str) -> None:
        folder = tmp_path / "broken"
        folder.mkdir(exist_ok=True)
        body = "\n".join(f"    {line}" for line in patch.strip().splitlines())
        (folder / "sitecustomize.py").write_text(SITECUSTOMIZE.format(patch=body))
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [
            str(folder), os.environ.get("PYTHONPATH", "")])))  # fmt: skip

    return install


#: a broken build breaks at once and every time: three seconds a phase show it
PHASE_SECONDS = 3.0


async def run(name: str, **overrides: object) -> RunRecord:
    scenario = short(load_scenario(ROOT / "scenarios" / f"{name}.yaml"), PHASE_SECONDS)
    settings = Settings.from_env({}).with_overrides(app_workers=1, **overrides)
    return await run_scenario(scenario, settings)


# P2P's failures answered as the app's anonymous 500s: the headline scenario's deposits are
# untouched, so only isolation can tell.
ANONYMOUS_P2P = """
from isolation_harness.reference_app.boundary import Boundary
from isolation_harness.reference_app.errors import DependencyUnavailable
original = Boundary.call
async def call(self, fn, *args, **kwargs):
    try:
        return await original(self, fn, *args, **kwargs)
    except DependencyUnavailable:
        if self.service != "p2p":
            raise
        raise RuntimeError("p2p failed") from None
Boundary.call = call
"""


async def test_a_target_failing_anonymously_fails_isolation(broken_build) -> None:  # type: ignore[no-untyped-def]
    broken_build(ANONYMOUS_P2P)
    record = await run("deposits-survive-p2p-outage")
    outcome = record.outcome
    assert outcome.exit_code() == EXIT_THRESHOLD, describe(record)
    breached = [t for t in outcome.thresholds if t.breached]
    assert {(t.source, t.group, t.phase) for t in breached} >= {
        ("isolation", "service p2p", "outage")
    }, describe(record)
    [p2p] = [t for t in breached if t.group == "service p2p"]
    assert "app:internal_error" in p2p.reason
    assert record.residue == []


# Every fifth deposit answered 201 and then deleted: acknowledged, but not there.
LOSSY_DEPOSITS = """
from isolation_harness.reference_app.services.deposits.service import DepositsService
original = DepositsService.create_deposit
made = [0]
async def create_deposit(self, *args, **kwargs):
    deposit, replayed = await original(self, *args, **kwargs)
    made[0] += 1
    if made[0] % 5 == 0:
        async with self.db.cursor() as cur:
            await cur.execute("DELETE FROM deposits.deposits WHERE id = %s", (str(deposit.id),))
    return deposit, replayed
DepositsService.create_deposit = create_deposit
"""


async def test_acknowledged_deposits_that_vanish_are_lost(broken_build) -> None:  # type: ignore[no-untyped-def]
    broken_build(LOSSY_DEPOSITS)
    record = await run("deposits-while-swap-broken")
    outcome = record.outcome
    assert outcome.exit_code() == EXIT_INVARIANT, describe(record)
    [lost] = [i for i in outcome.invariants if i.name == "no_operation_lost"]
    assert not lost.passed
    assert lost.counts["lost"] >= 1
    assert any("deposit" in v and "lost" in v for v in lost.violations), lost.violations[:3]


# The old app: "expired" is final, so a payment made after the app expired its deposit is
# refused (answered 200) and never credited.
REFUSES_LATE_PAYMENTS = """
from isolation_harness.reference_app.services.deposits.domain import TRANSITIONS, DepositStatus
TRANSITIONS[DepositStatus.EXPIRED] = frozenset()
"""


async def test_late_payments_refused_by_the_app_fail_reconciliation(broken_build) -> None:  # type: ignore[no-untyped-def]
    """The provider's book, read by the runner after the load, shows finished payments the
    ledger never got: provider_reconciled names each, and no_operation_lost fails with it."""
    broken_build(REFUSES_LATE_PAYMENTS)
    scenario = load_scenario(ROOT / "scenarios" / "late-payment-after-expiry.yaml")
    record = await run_scenario(scenario, Settings.from_env({}).with_overrides(app_workers=1))
    outcome = record.outcome
    assert outcome.exit_code() == EXIT_INVARIANT, describe(record)
    results = {i.name: i for i in outcome.invariants}
    reconciled = results["provider_reconciled"]
    assert not reconciled.passed
    assert reconciled.counts["uncredited"] >= 1
    assert reconciled.counts["uncredited"] == len(reconciled.violations)
    assert all("finished at the provider" in v and "expired" in v
               for v in reconciled.violations)  # fmt: skip
    assert reconciled.counts["credited"] >= 1  # payments made in time were credited
    assert not results["no_operation_lost"].passed
    assert results["ledger_balanced"].passed


# The fault API's "raise" does nothing: the scenario's fault has no effect.
NO_OP_FAULTS = """
from isolation_harness.reference_app.faults import FaultMode, FaultSwitches
_on_connection = FaultSwitches.on_connection
async def on_connection(self, service):
    if self.get(service).mode is not FaultMode.RAISE:
        await _on_connection(self, service)
FaultSwitches.on_connection = on_connection
"""


async def test_a_fault_that_does_nothing_makes_the_run_invalid(broken_build) -> None:  # type: ignore[no-untyped-def]
    broken_build(NO_OP_FAULTS)
    record = await run("deposits-while-swap-broken")
    outcome = record.outcome
    assert outcome.exit_code() == EXIT_INVALID, describe(record)
    [effect] = [v for v in outcome.validity if v.name.startswith("fault had an effect")]
    assert not effect.passed
    assert "swap: failed as its own" in effect.detail


# Every worker burns CPU on its event loop: half a second busy, a fifth idle, over and over.
# The loop then wakes everything up to half a second late, whatever the services do.
BURNING_LOOP = """
import asyncio
import time
from isolation_harness.reference_app import app as app_module
create_app = app_module.create_app
async def burn(app):
    async def forever():
        while True:
            await asyncio.sleep(0.2)
            busy_until = time.perf_counter() + 0.5
            while time.perf_counter() < busy_until:
                pass
    task = asyncio.create_task(forever())
    yield
    task.cancel()
def burning_app(*args, **kwargs):
    app = create_app(*args, **kwargs)
    app.cleanup_ctx.append(burn)
    return app
app_module.create_app = burning_app
"""


async def test_an_app_burning_its_event_loop_makes_the_run_invalid_not_failed(broken_build) -> None:  # type: ignore[no-untyped-def]
    broken_build(BURNING_LOOP)
    record = await run("deposits-survive-p2p-outage")
    outcome = record.outcome
    assert outcome.exit_code() == EXIT_INVALID, describe(record)
    saturated = [
        v for v in outcome.validity if v.name.startswith("machine not saturated") and not v.passed
    ]
    assert saturated, describe(record)
    assert any("loop lag up to" in v.detail for v in saturated), describe(record)
    assert any(
        r.startswith("invalid: machine not saturated in ") and "saturated for " in r
        for r in outcome.reasons()
    ), describe(record)
    phases = [p for p in record.phases if p.name == saturated[0].name.rsplit(" ", 1)[1]]
    assert phases, saturated[0].name  # the check names a phase of the run
    assert record.residue == []


async def test_an_app_limit_at_the_clients_timeout_stops_the_run() -> None:
    record = await run("deposits-survive-p2p-outage", app_service_timeout=4.8)
    outcome = record.outcome
    assert outcome.exit_code() == EXIT_HARNESS_ERROR
    [error] = outcome.harness_errors
    assert "service time limit (4.8 s) is not below the load generator's client timeout" in error
    assert "HARNESS_APP_SERVICE_TIMEOUT" in error
    assert outcome.thresholds == []  # stopped before any load: nothing judged


def locust_of(seed: int) -> list[int]:
    """The pids of the Locust processes of the run with ``seed`` (by their environment)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"locust" not in argv:
                continue
            if f"HARNESS_SEED={seed}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
    return found


async def test_a_load_generator_that_dies_is_a_harness_error_not_a_verdict() -> None:
    seed = 424242
    scenario = short(
        load_scenario(ROOT / "scenarios" / "deposits-survive-p2p-outage.yaml"), PHASE_SECONDS
    )
    settings = Settings.from_env({}).with_overrides(app_workers=1)
    running = asyncio.ensure_future(run_scenario(scenario, settings, seed=seed))
    for _ in range(600):  # until Locust is running (a stack takes a few seconds)
        pids = locust_of(seed)
        if pids:
            break
        await asyncio.sleep(0.1)
    assert pids, "Locust never started"
    await asyncio.sleep(2)
    for pid in pids:
        os.kill(pid, 9)
    record = await running
    outcome = record.outcome
    assert outcome.exit_code() == EXIT_HARNESS_ERROR, describe(record)
    [error] = outcome.harness_errors
    assert error.startswith("the load generator failed: ")
    assert "\n" not in error
    assert record.residue == []


# A legacy design that gives its connections back on every error: only the shared pool and
# the missing acquire timeout remain, and swap's failures no longer reach deposits. The
# counterpart must then fail its expectation: it rests on the mechanism, not on the fault.
LEGACY_WITHOUT_THE_LEAK = """
from isolation_harness.reference_app.db import ServiceDatabase
from isolation_harness.reference_app.legacy import SharedPoolDatabase
SharedPoolDatabase.connection = ServiceDatabase.connection
"""


async def test_a_legacy_counterpart_fails_only_by_its_mechanism(broken_build) -> None:  # type: ignore[no-untyped-def]
    broken_build(LEGACY_WITHOUT_THE_LEAK)
    counterpart = ROOT / "scenarios" / "legacy" / "legacy-deposits-while-swap-broken.yaml"
    scenario = short(load_scenario(counterpart), PHASE_SECONDS)
    record = await run_scenario(scenario, Settings.from_env({}).with_overrides(app_workers=1))
    outcome = record.outcome
    assert outcome.exit_code() == EXIT_THRESHOLD, describe(record)
    assert [e.happened for e in outcome.expectations] == [False]
    assert "expected failure did not happen" in "\n".join(outcome.reasons()), describe(record)
