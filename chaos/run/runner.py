"""Run one scenario: a stack, the load, the timeline of faults, then the verdicts.

The runner starts a throw-away stack of the scenario's variant (or reuses a running one of
the same variant), starts the load, and walks the timeline: each phase applies its faults,
lasts its duration, and reverts them. Every applied fault is pushed on a stack of reverts that
is unwound in ``finally`` — also on SIGINT/SIGTERM, which cancel the run — and afterwards the
runner checks that nothing faulty remains. Server-side state is sampled every second.

The timeline starts once Locust has spawned every user (and the ramp the scenario plans has
passed); when it ends, the load is told to finish (each user completes its request in hand)
while the app's deadline to be ready again runs, and the requests still in the app give back
their connections; then the invariants are checked. Each step's seconds are recorded
(:data:`STEPS`): what a run costs beyond its judged phases. The runner only orchestrates
and records (:mod:`chaos.judge.evidence`): the verdicts are the judge's
(:func:`chaos.judge.judgement.judge`), computed from that record alone.

*Why one module of this length:* it is the orchestration of one run, read top to bottom in
the order the run takes its steps; what is not orchestration is elsewhere (the server's
samples in :mod:`chaos.run.server`, the record in :mod:`chaos.run.record`, the facts and
invariants in :mod:`chaos.invariants`, the verdicts in
:mod:`chaos.judge`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp

from isolation_harness.chaos.errors import ConfigError, HarnessError
from isolation_harness.chaos.faults import Fault, FaultContext, Recycle, residue
from isolation_harness.chaos.interruption import SIGNALS, Interruption, RunInterrupted
from isolation_harness.chaos.invariants import REGISTRY, Facts, InvariantResult, check_invariants
from isolation_harness.chaos.invariants.facts import database_now_at, provider_book, redeliver_ipns
from isolation_harness.chaos.invariants.oracle import ProviderPayment
from isolation_harness.chaos.judge.evidence import Evidence, FaultRecord, Limits, PhaseRecord
from isolation_harness.chaos.judge.judgement import judge
from isolation_harness.chaos.run.record import RunRecord
from isolation_harness.chaos.run.server import pool_capacity, sample_server, settle, wait_ready
from isolation_harness.chaos.scenario.model import Scenario
from isolation_harness.chaos.stack import backend, postgres
from isolation_harness.chaos.stack.lifecycle import Stack
from isolation_harness.chaos.stack.settings import Settings
from isolation_harness.chaos.stack.state import StackState
from isolation_harness.chaos.stack.warden import Warden
from isolation_harness.chaos.toxiproxy.client import ToxiproxyClient
from isolation_harness.load.kinds import CLIENT_TIMEOUT
from isolation_harness.load.operations import outcome_counts
from isolation_harness.load.runner import LoadError, LoadPlan, LoadResult, LoadRun
from isolation_harness.load.seeding import random_seed
from isolation_harness.load.series import time_series
from isolation_harness.reference_app.settings import AppSettings
from isolation_harness.topology.environment import ENV_PAYMENTS_URL, ENV_SEED, ENV_THINK_TIME
from isolation_harness.topology.services import APP_DATABASE

#: seconds an answer needs to come back after the app's time limit ran out
ANSWER_MARGIN = 0.5
#: seconds Locust may take to boot and spawn its users beyond the plan's own ramp
SPAWN_GRACE = 30.0
#: seconds the app of a run gets to stop by itself at the end: its load has ended and its
#: requests have settled, so what it still runs is hung (the legacy design's requests that
#: wait for a connection forever) and judged already; then it is killed
DRAIN_SECONDS = 1.0
#: seconds between two looks at Locust spawning its users
POLL_INTERVAL = 0.05

Report = Callable[[str], None]
log = logging.getLogger(__name__)


class ScenarioRunner:
    """Runs one scenario and records it; ``run()`` never leaves a fault or a process behind."""

    def __init__(
        self,
        scenario: Scenario,
        settings: Settings,
        *,
        source: Path | None = None,
        seed: int | None = None,
        reuse: bool = False,
        report: Report = lambda _: None,
        on_timeline_end: Callable[[], None] = lambda: None,
    ) -> None:
        self.scenario = scenario
        self.settings = settings
        self.reuse = reuse
        self.report = report
        #: called once the last phase has ended: the run only winds down from then on
        self.on_timeline_end = on_timeline_end
        chosen = seed if seed is not None else scenario.seed
        self.record = RunRecord(scenario, source, chosen if chosen is not None else random_seed())
        #: stops what this run started should its process die first (started by ``run``)
        self.warden: Warden | None = None

    async def run(self) -> RunRecord:
        """Run the scenario; the record's outcome holds the verdicts (and harness errors).

        Whatever goes wrong in the harness or the load generator ends as a harness error
        (exit 4) with one line naming it, never as a verdict.
        """
        record = self.record
        record.started_at = time.time()
        record.versions = _versions()
        state_dir: Path | None = None
        stack: Stack | None = None
        started = False
        up: asyncio.Task[tuple[StackState, bool]] | None = None
        try:
            stack, state_dir = self._stack()
            self.warden = self._start_warden(stack, state_dir)
            # Shielded: a thread cannot be cancelled, so a start cut short by Ctrl-C goes on,
            # and what it started is stopped once it ends (below).
            up = asyncio.ensure_future(asyncio.to_thread(stack.up))
            state, started = await asyncio.shield(up)
            record.lap("stack_up")
            self._check_variant(state)
            await self._run_on(state)
        except asyncio.CancelledError:
            record.interrupted = True
            record.outcome.harness_errors.append("interrupted (SIGINT/SIGTERM)")
        except HarnessError as exc:
            record.outcome.harness_errors.append(str(exc))
        except LoadError as exc:
            record.outcome.harness_errors.append(f"the load generator failed: {exc}")
        except Exception as exc:  # a bug of the harness: reported, never judged
            log.exception("the harness crashed")
            record.outcome.harness_errors.append(
                f"the harness crashed: {type(exc).__name__}: {exc}".strip()
            )
        finally:
            started = started or await _started_meanwhile(up)
            if stack is not None and started:
                try:
                    await asyncio.shield(asyncio.to_thread(stack.down, drain=DRAIN_SECONDS))
                except HarnessError as exc:
                    record.outcome.harness_errors.append(f"stopping the stack: {exc}")
            if state_dir is not None:
                shutil.rmtree(state_dir, ignore_errors=True)
            if self.warden is not None:
                self.warden.release()
            record.lap("stack_down")
            record.ended_at = time.time()
        return record

    @staticmethod
    def _start_warden(stack: Stack, state_dir: Path | None) -> Warden:
        """The warden of this run: it stops the run's own stack (and its load) should this
        process die before it could."""
        if state_dir is None:  # a running stack (--reuse) is not the run's to stop
            return Warden.start(
                Path(tempfile.gettempdir()) / f"harness-warden-{os.getpid()}-{id(stack)}.log"
            )
        warden = Warden.start(state_dir / "logs" / "warden.log")
        warden.watch_stack(stack.settings.model_dump(mode="json"))
        warden.watch_folder(state_dir)
        return warden

    def _check_variant(self, state: StackState) -> None:
        if state.app is None or state.app.variant != self.scenario.variant:
            raise HarnessError(
                f"the running stack is not the {self.scenario.variant} design",
                "run without --reuse, or `harness down` and `harness up --variant …`",
            )

    def _stack(self) -> tuple[Stack, Path | None]:
        if self.reuse:
            if self.scenario.app:
                raise HarnessError(
                    "the scenario sets app settings, which a running stack cannot take",
                    "run it without --reuse",
                )
            return Stack(self.settings.with_overrides(app_variant=self.scenario.variant)), None
        state_dir = Path(tempfile.mkdtemp(prefix=f"harness-run-{self.scenario.name}-"))
        state_dir.chmod(0o755)
        settings = self.settings.with_overrides(
            state_dir=state_dir, app_variant=self.scenario.variant
        )
        return Stack(settings, self.report, app_overrides=self.scenario.app), state_dir

    async def _run_on(self, state: StackState) -> None:
        assert state.app is not None
        assert state.toxiproxy is not None
        assert state.postgres is not None
        scenario = self.scenario
        self.record.limits = limits_of(backend.read_settings(state.app.settings_file))
        async with ToxiproxyClient(state.toxiproxy.url) as tox, aiohttp.ClientSession() as http:
            ctx = FaultContext.from_stack(state, tox, http)
            leftovers = await residue(ctx)
            if leftovers:
                raise HarnessError(
                    "the stack already has faults in place: " + "; ".join(leftovers),
                    "`harness down` and run again",
                )
            # The users' spawning and a second for their sign-up: the timeline starts when
            # every user is signed up, at the latest then, and never before Locust says every
            # user is spawned (a busy machine boots it late).
            ramp = scenario.load.users / scenario.load.spawn_rate + 1.0
            exchange = postgres.with_dbname(state.postgres.dsn, APP_DATABASE)
            # The database's own clock: what is stored from now on is the run's.
            since = await asyncio.to_thread(database_now_at, exchange)
            payments_url = ctx.fake_urls.get("payments")
            plan = LoadPlan(
                host=state.app.url,
                users=scenario.load.users,
                spawn_rate=scenario.load.spawn_rate,
                # the run time is a safety net: the runner ends the load with the timeline
                duration=ramp + SPAWN_GRACE + scenario.total_duration + 1.0,
                mix=dict(scenario.load.mix),
                admin_token=state.app.admin_token,
                workers=scenario.load.workers,
                extra_env={
                    ENV_SEED: str(self.record.seed),
                    **(
                        {ENV_THINK_TIME: ",".join(f"{t:g}" for t in scenario.load.think_time)}
                        if scenario.load.think_time is not None
                        else {}
                    ),
                    **({ENV_PAYMENTS_URL: payments_url} if payments_url else {}),
                },
            )
            load = LoadRun(plan)
            sampler: asyncio.Task[None] | None = None
            ready: asyncio.Task[float | None] | None = None
            result: LoadResult | None = None
            try:
                try:
                    load.start(self.warden)
                    sampler = asyncio.create_task(
                        sample_server(self.record.server, state, http, tox, ctx.cluster, load.pids)
                    )
                    await self._ramp(load, ramp)
                    self.record.lap("ramp")
                    try:
                        await self._timeline(ctx, load)
                    finally:
                        self.record.lap("phases")  # the judged part, also if cut short
                    self.on_timeline_end()
                    # Every fault is reverted: the app's deadline to be ready runs from now,
                    # while the users finish the requests in hand.
                    ready = asyncio.create_task(
                        wait_ready(http, state.app.url, scenario.ready_within)
                    )
                    load.finish()
                    result = await asyncio.to_thread(load.wait)
                finally:
                    if sampler is not None:
                        sampler.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await sampler
                    await asyncio.to_thread(load.stop)
                    load.cleanup()  # every sample is in memory by now, or the run is over
                self.record.lap("load_stop")
                capacity = pool_capacity(state)
                # the requests still in the app give back their connections meanwhile
                await asyncio.to_thread(settle, exchange, list(capacity))
                self.record.recovered_after = await ready
                self.record.lap("readiness")
            finally:
                if ready is not None:
                    ready.cancel()
            self.record.residue = await residue(ctx)
            payments = None
            if any(REGISTRY[n].reads_provider for n in scenario.checked_invariants):
                payments = await asyncio.to_thread(self._provider_book, payments_url)
            invariants = await self._invariants(state, result, since, payments, capacity)
        self._judge(result, invariants)
        self.record.lap("checks")

    async def _timeline(self, ctx: FaultContext, load: LoadRun) -> None:
        reverts: list[tuple[Fault, FaultRecord]] = []
        try:
            for phase in self.scenario.timeline:
                self._check_load(load)
                record = PhaseRecord(phase.name, start=time.time())
                self.record.phases.append(record)
                self.report(f"phase {phase.name} ({phase.duration:g} s)")
                for entry in phase.faults:
                    fault = entry.fresh()
                    fault_record = FaultRecord.of(fault, ctx)
                    record.faults.append(fault_record)
                    # pushed first: a half-applied fault is reverted too
                    reverts.append((fault, fault_record))
                    fault_record.evidence.update(await fault.observe(ctx, "before"))
                    fault_record.applied_at = time.time()
                    await fault.apply(ctx)
                    if fault.restored_by_apply:
                        fault_record.restored_at = time.time()  # back up when apply() returns
                    fault_record.evidence.update(await fault.observe(ctx, "after"))
                    record.events.append({"at": time.time(), "applied": fault_record.description})
                    self.report(f"  applied: {fault_record.description}")
                for service in phase.recycle:
                    await Recycle(service).apply(ctx)
                    record.events.append({"at": time.time(), "recycled": service})
                # A phase lasts its duration under its faults: a fault slow to take hold (a
                # leak opening every connection of a pool on a busy machine) must not eat the
                # time it is judged in. A restart or crash is over when applied: its phase
                # counts from its start.
                acting = any(not fault.restored_by_apply for fault, _ in reverts)
                since = time.time() if acting else record.start
                await asyncio.sleep(max(0.0, since + phase.duration - time.time()))
                while reverts:
                    await self._revert(ctx, *reverts.pop())
                record.end = time.time()
        finally:
            # Reached on errors and cancellation (SIGINT) too: undo everything still applied.
            errors = []
            while reverts:
                fault, fault_record = reverts.pop()
                try:
                    await asyncio.shield(self._revert(ctx, fault, fault_record))
                except (HarnessError, aiohttp.ClientError, OSError) as exc:
                    errors.append(f"reverting {fault.describe(ctx)}: {exc}")
            if self.record.phases and not self.record.phases[-1].end:
                self.record.phases[-1].end = time.time()
            if errors:
                self.record.outcome.harness_errors.extend(errors)

    async def _revert(self, ctx: FaultContext, fault: Fault, record: FaultRecord) -> None:
        await fault.revert(ctx)
        record.reverted_at = time.time()
        if record.restored_at is None:
            record.restored_at = record.reverted_at
        record.evidence.update(await fault.observe(ctx, "reverted"))
        self.record.phases[-1].events.append({"at": time.time(), "reverted": record.description})

    async def _ramp(self, load: LoadRun, ramp: float) -> None:
        """Wait until Locust has spawned every user (at most ``ramp`` + :data:`SPAWN_GRACE`
        seconds from the load's start; fail naming why not) and every user is through its
        sign-up, or ``ramp`` seconds have passed (sign-ups that keep failing)."""
        deadline = load.started_at + ramp + SPAWN_GRACE
        users = load.plan.users
        while not load.spawned() or (
            load.started() < users and time.time() < load.started_at + ramp
        ):
            self._check_load(load)
            if time.time() > deadline:
                raise LoadError(
                    f"Locust did not spawn its {load.plan.users} users within "
                    f"{ramp + SPAWN_GRACE:g} s"
                )
            await asyncio.sleep(POLL_INTERVAL)

    @staticmethod
    def _check_load(load: LoadRun) -> None:
        """A load generator that died is a harness error now, not silence judged later."""
        if not load.running and time.time() < load.started_at + load.plan.duration - 1.0:
            load.wait()  # raises LoadError with Locust's last words if it failed
            raise LoadError("Locust stopped before its run time was over")

    def _provider_book(self, url: str | None) -> list[ProviderPayment] | None:
        """The payment provider's book once its undelivered IPNs were sent again, as the real
        provider retries them (None if it cannot be read: the reconciliation then fails).

        Not sent again to an app that was not ready after the last revert (a starved legacy
        design): each would wait for the provider's own IPN timeout and be refused all the
        same; the payments they were for stay uncredited, and the reconciliation says so.
        """
        if url is None:
            return None
        try:
            if self.record.recovered_after is None:
                self.report(
                    "payment provider: undelivered IPNs not sent again: the app is not ready"
                )
            elif (redelivery := redeliver_ipns(url)).resent:
                self.report(
                    f"payment provider: {redelivery.resent} undelivered IPN(s) sent again"
                    f" (they had failed: {redelivery.summary()})"
                )
            return provider_book(url)
        except HarnessError as exc:
            self.record.outcome.harness_errors.append(str(exc))
            return None

    async def _invariants(
        self,
        state: StackState,
        result: LoadResult | None,
        since: datetime,
        payments: list[ProviderPayment] | None,
        capacity: dict[str, int],
    ) -> list[InvariantResult]:
        assert state.postgres is not None
        facts = Facts(
            cursor=None,
            operations=result.operations if result is not None else [],
            since=since,
            payments=payments,
            capacity=capacity,
            residue=list(self.record.residue),
            links=len(state.links),
        )
        return await asyncio.to_thread(
            check_invariants,
            postgres.with_dbname(state.postgres.dsn, APP_DATABASE),
            self.scenario.checked_invariants,
            facts,
        )

    def _judge(self, result: LoadResult | None, invariants: list[InvariantResult]) -> None:
        """Hand the record to the judge; keep the harness errors found on the way."""
        record = self.record
        errors = record.outcome.harness_errors
        if result is None or record.limits is None:
            record.outcome.invariants = invariants
            errors.append("the load produced no result")
            return
        record.samples = len(result.samples)
        origin = record.phases[0].start if record.phases else record.started_at
        record.series = time_series(result.samples, origin)
        record.operations = outcome_counts(result.operations)
        record.saturated = result.saturated
        outcome = judge(
            Evidence(
                scenario=self.scenario,
                samples=result.samples,
                phases=record.phases,
                limits=record.limits,
                server=record.server,
                invariants=invariants,
                saturated=result.saturated,
                recovered_after=record.recovered_after,
            )
        )
        outcome.harness_errors = errors + outcome.harness_errors
        stats = outcome.analysis.pop("stats", {})
        record.stats = {
            phase: {group: _plain(s.as_dict()) for group, s in groups.items()}
            for phase, groups in stats.items()
        }
        record.outcome = outcome


def limits_of(app_settings: AppSettings) -> Limits:
    """The time limits of a stack's app (its settings file), checked against the client's.

    A hang must surface as the app's own answer (a 503 naming the service), so the app's
    time limit must end before the load generator's client timeout does.
    """
    pools = list(app_settings.pools().values())
    acquire = max((p.acquire_timeout or 0.0 for p in pools), default=0.0)
    service_timeout = app_settings.service_timeout
    if service_timeout + ANSWER_MARGIN > CLIENT_TIMEOUT:
        raise ConfigError(
            f"the app's service time limit ({service_timeout:g} s) is not below the load "
            f"generator's client timeout ({CLIENT_TIMEOUT:g} s, with {ANSWER_MARGIN:g} s for "
            "the answer to come back): a hang would show as a client timeout, not as the "
            "app's own 503",
            f"set HARNESS_APP_SERVICE_TIMEOUT below {CLIENT_TIMEOUT - ANSWER_MARGIN:g} and "
            "start the stack again",
        )
    return Limits(acquire, service_timeout, CLIENT_TIMEOUT)


def _plain(stats: dict[str, object]) -> dict[str, object]:
    return {k: _finite(v) if isinstance(v, float) else v for k, v in stats.items()}


def _finite(value: float | None) -> float | None:
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return value


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("aiohttp", "aiopg", "locust", "psycopg2-binary", "pydantic"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[package] = metadata.version(package)
    return found


async def run_scenario(
    scenario: Scenario,
    settings: Settings,
    *,
    source: Path | None = None,
    seed: int | None = None,
    reuse: bool = False,
    report: Report = lambda _: None,
    interruption: Interruption | None = None,
    on_timeline_end: Callable[[], None] = lambda: None,
) -> RunRecord:
    """Run ``scenario``; SIGINT and SIGTERM stop it cleanly (every fault reverted).

    The signals reach this event loop, which then raises :class:`RunInterrupted` once the run
    is cleaned up, unless ``interruption`` is given: then it stops the run (a run in a thread
    other than the main one, whose loop gets no signal), and the record says it was
    interrupted.
    ``on_timeline_end`` is called once the last phase has ended (:class:`ScenarioRunner`).
    """
    runner = ScenarioRunner(
        scenario, settings, source=source, seed=seed, reuse=reuse, report=report,
        on_timeline_end=on_timeline_end,
    )  # fmt: skip
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    own = interruption is None
    stopper = Interruption() if interruption is None else interruption
    if own:
        for sig in SIGNALS:
            loop.add_signal_handler(sig, stopper.interrupt)
    try:
        with stopper.watching(task):
            record = await _uncancellable(runner.run())
    finally:
        if own:
            for sig in SIGNALS:
                loop.remove_signal_handler(sig)
    if own and stopper.interrupted:
        raise RunInterrupted(record)
    return record


async def _started_meanwhile(up: asyncio.Task[tuple[StackState, bool]] | None) -> bool:
    """Whether a stack's start that the run stopped waiting for (Ctrl-C) started it in the
    end. Its thread goes on regardless: it is waited for (each step has its own deadline),
    or what it starts after the run has cleaned up would be left running."""
    if up is None:
        return False
    if not up.done():
        await asyncio.wait([up])
    return not up.cancelled() and up.exception() is None and up.result()[1]


async def _uncancellable(work: Coroutine[Any, Any, RunRecord]) -> RunRecord:
    """Run ``work`` in its own task; a cancellation of the caller is passed on once."""
    inner: asyncio.Task[RunRecord] = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(inner)
    except asyncio.CancelledError:
        inner.cancel()
        return await inner
