"""Run one scenario: a stack, the load, the timeline of faults, then the verdicts.

The runner starts a throw-away stack of the scenario's variant (or reuses a running one of
the same variant), starts the load, and walks the timeline: each phase applies its faults,
lasts its duration, and reverts them. Every applied fault is pushed on a stack of reverts that
is unwound in ``finally`` — also on SIGINT/SIGTERM, which cancel the run — and afterwards the
runner checks that nothing faulty remains. Server-side state is sampled every second. The
verdicts are computed from the samples only, and the journal holds all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import platform
import random
import re
import shutil
import signal
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp

from chaos import postgres
from chaos.errors import HarnessError
from chaos.facts import database_now, provider_book, redeliver_ipns
from chaos.faults import (
    DbCrash,
    DbRestart,
    DbStopped,
    Fault,
    FaultContext,
    LinkDown,
    ProviderFault,
    Recycle,
    ServiceFault,
    Toxic,
    residue,
)
from chaos.invariants import (
    NO_OPERATION_LOST,
    PROVIDER_RECONCILED,
    InvariantResult,
    check_database,
)
from chaos.judge.oracle import ProviderPayment
from chaos.scenario import (
    DbCrashSpec,
    DbRestartSpec,
    DbStopSpec,
    FaultSpec,
    LinkDownSpec,
    ProviderFaultSpec,
    Scenario,
    ServiceFaultSpec,
    ToxicSpec,
)
from chaos.settings import Settings
from chaos.stack import Stack
from chaos.state import StackState
from chaos.thresholds import evaluate
from chaos.toxiproxy.client import ToxiproxyClient
from chaos.verdicts import Outcome, ThresholdVerdict, ValidityCheck
from load.kinds import ENV_PAYMENTS_URL, ENV_SEED
from load.operations import outcome_counts
from load.runner import LoadPlan, LoadResult, LoadRun
from load.samples import Sample
from load.stats import GroupStats, by_group, group_stats, matching

#: fewer requests than this in a judged group and phase make the run invalid
MIN_SAMPLES = 10
#: a fault bit its target if the error rate rose by this much…
EFFECT_ERROR_RATE = 0.05
#: …or its p99 latency grew by this factor (and at least EFFECT_MIN_MS)
EFFECT_LATENCY_FACTOR = 1.5
EFFECT_MIN_MS = 20.0
RECOVERY_DEADLINE = 15.0
SAMPLE_INTERVAL = 1.0
SETTLE_SECONDS = 2.0
_METRIC = re.compile(r"^(db_pool_\w+)\{service=\"([^\"]*)\"\} (\S+)$", re.MULTILINE)

Report = Callable[[str], None]


@dataclass
class PhaseRecord:
    name: str
    start: float = 0.0
    end: float = 0.0
    faults: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "start": self.start, "end": self.end,
                "faults": self.faults, "events": self.events}  # fmt: skip


@dataclass
class RunRecord:
    """Everything that happened, for the journal and the verdicts."""

    scenario: Scenario
    source: Path | None
    seed: int
    started_at: float = 0.0
    ended_at: float = 0.0
    phases: list[PhaseRecord] = field(default_factory=list)
    server: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, dict[str, dict[str, object]]] = field(default_factory=dict)
    residue: list[str] = field(default_factory=list)
    recovered_after: float | None = None
    saturated: bool = False
    samples: int = 0
    #: the money-moving requests of the load, by outcome (acknowledged, failed, indeterminate)
    operations: dict[str, int] = field(default_factory=dict)
    outcome: Outcome = field(default_factory=Outcome)
    interrupted: bool = False
    versions: dict[str, str] = field(default_factory=dict)


def fault_for(spec: FaultSpec) -> Fault:
    """The runtime fault object of a scenario's fault entry."""
    if isinstance(spec, LinkDownSpec):
        return LinkDown(spec.link)
    if isinstance(spec, ToxicSpec):
        return Toxic(spec.link, spec.toxic, dict(spec.attributes), spec.stream, spec.toxicity)
    if isinstance(spec, ServiceFaultSpec):
        return ServiceFault(spec.service, spec.mode, spec.slow_ms or 0)
    if isinstance(spec, DbRestartSpec):
        return DbRestart(spec.mode)
    if isinstance(spec, DbCrashSpec):
        return DbCrash()
    if isinstance(spec, DbStopSpec):
        return DbStopped()
    if isinstance(spec, ProviderFaultSpec):
        kwargs: dict[str, Any] = {}
        if spec.status is not None:
            kwargs["status"] = spec.status
        if spec.delay_ms is not None:
            kwargs["delay_ms"] = spec.delay_ms
        if spec.stale_seconds is not None:
            kwargs["stale_seconds"] = spec.stale_seconds
        return ProviderFault(spec.target, spec.mode, **kwargs)
    raise TypeError(f"no fault for {type(spec).__name__}")


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
    ) -> None:
        self.scenario = scenario
        self.settings = settings
        self.reuse = reuse
        self.report = report
        chosen = seed if seed is not None else scenario.seed
        self.record = RunRecord(
            scenario, source, chosen if chosen is not None else random.randrange(2**31)
        )

    async def run(self) -> RunRecord:
        """Run the scenario; the record's outcome holds the verdicts (and harness errors)."""
        record = self.record
        record.started_at = time.time()
        record.versions = _versions()
        state_dir: Path | None = None
        stack: Stack | None = None
        started = False
        try:
            stack, state_dir = self._stack()
            state, started = await asyncio.to_thread(stack.up)
            self._check_variant(state)
            await self._run_on(state)
        except asyncio.CancelledError:
            record.interrupted = True
            record.outcome.harness_errors.append("interrupted (SIGINT/SIGTERM)")
        except HarnessError as exc:
            record.outcome.harness_errors.append(str(exc))
        finally:
            if stack is not None and started:
                try:
                    await asyncio.shield(asyncio.to_thread(stack.down))
                except HarnessError as exc:
                    record.outcome.harness_errors.append(f"stopping the stack: {exc}")
            if state_dir is not None:
                shutil.rmtree(state_dir, ignore_errors=True)
            record.ended_at = time.time()
        return record

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
        async with ToxiproxyClient(state.toxiproxy.url) as tox, aiohttp.ClientSession() as http:
            ctx = FaultContext.from_stack(state, tox, http)
            leftovers = await residue(ctx)
            if leftovers:
                raise HarnessError(
                    "the stack already has faults in place: " + "; ".join(leftovers),
                    "`harness down` and run again",
                )
            ramp = scenario.load.users / scenario.load.spawn_rate + 1.0
            exchange = postgres.with_dbname(state.postgres.dsn, "exchange")
            # The database's own clock: what is stored from now on is the run's.
            since = await asyncio.to_thread(_database_now, exchange)
            payments_url = ctx.fake_urls.get("payments")
            plan = LoadPlan(
                host=state.app.url,
                users=scenario.load.users,
                spawn_rate=scenario.load.spawn_rate,
                duration=ramp + scenario.total_duration + 1.0,
                mix=dict(scenario.load.mix),
                admin_token=state.app.admin_token,
                workers=scenario.load.workers,
                extra_env={
                    ENV_SEED: str(self.record.seed),
                    **({ENV_PAYMENTS_URL: payments_url} if payments_url else {}),
                },
            )
            load = LoadRun(plan)
            sampler: asyncio.Task[None] | None = None
            result: LoadResult | None = None
            try:
                load.start()
                sampler = asyncio.create_task(self._sample(state, http, tox))
                await asyncio.sleep(ramp)
                await self._timeline(ctx)
                result = await asyncio.to_thread(load.wait)
            finally:
                if sampler is not None:
                    sampler.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sampler
                await asyncio.to_thread(load.stop)
                load.cleanup()  # every sample is in memory by now, or the run is over
            self.record.recovered_after = await asyncio.to_thread(_wait_ready, state.app.url)
            self.record.residue = await residue(ctx)
            await asyncio.sleep(SETTLE_SECONDS)  # let requests in flight give back connections
            payments = None
            if {NO_OPERATION_LOST, PROVIDER_RECONCILED} & set(scenario.invariants):
                payments = await asyncio.to_thread(self._provider_book, payments_url)
            invariants = await self._invariants(state, result, since, payments)
        self._judge(result, invariants)

    async def _timeline(self, ctx: FaultContext) -> None:
        reverts: list[Fault] = []
        try:
            for phase in self.scenario.timeline:
                record = PhaseRecord(phase.name, start=time.time())
                self.record.phases.append(record)
                self.report(f"phase {phase.name} ({phase.duration:g} s)")
                for spec in phase.faults:
                    fault = fault_for(spec)
                    reverts.append(fault)  # pushed first: a half-applied fault is reverted too
                    await fault.apply(ctx)
                    record.faults.append(fault.describe(ctx))
                    record.events.append({"at": time.time(), "applied": fault.describe(ctx)})
                    self.report(f"  applied: {fault.describe(ctx)}")
                for service in phase.recycle:
                    await Recycle(service).apply(ctx)
                    record.events.append({"at": time.time(), "recycled": service})
                await asyncio.sleep(max(0.0, record.start + phase.duration - time.time()))
                while reverts:
                    fault = reverts.pop()
                    await fault.revert(ctx)
                    record.events.append({"at": time.time(), "reverted": fault.describe(ctx)})
                record.end = time.time()
        finally:
            # Reached on errors and cancellation (SIGINT) too: undo everything still applied.
            errors = []
            while reverts:
                fault = reverts.pop()
                try:
                    await asyncio.shield(fault.revert(ctx))
                except (HarnessError, aiohttp.ClientError, OSError) as exc:
                    errors.append(f"reverting {fault.describe(ctx)}: {exc}")
            if self.record.phases and not self.record.phases[-1].end:
                self.record.phases[-1].end = time.time()
            if errors:
                self.record.outcome.harness_errors.extend(errors)

    async def _sample(
        self, state: StackState, http: aiohttp.ClientSession, tox: ToxiproxyClient
    ) -> None:
        """Every second: the pools' gauges, connections per application, toxics present."""
        assert state.app is not None
        assert state.postgres is not None
        admin = postgres.with_dbname(state.postgres.dsn, "exchange")
        while True:
            entry: dict[str, Any] = {"at": time.time()}
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(
                    f"{state.app.url}/metrics", timeout=aiohttp.ClientTimeout(total=2)
                ) as answer:
                    entry["pools"] = _pool_gauges(await answer.text())
            with contextlib.suppress(HarnessError):
                entry["connections"] = await asyncio.to_thread(_connections, admin)
            with contextlib.suppress(HarnessError, aiohttp.ClientError):
                entry["toxics"] = {
                    name: len(proxy.toxics) for name, proxy in (await tox.proxies()).items()
                }
            self.record.server.append(entry)
            await asyncio.sleep(SAMPLE_INTERVAL)

    def _provider_book(self, url: str | None) -> list[ProviderPayment] | None:
        """The payment provider's book once its undelivered IPNs were sent again, as the real
        provider retries them (None if it cannot be read: the reconciliation then fails)."""
        if url is None:
            return None
        try:
            resent = redeliver_ipns(url)
            if resent:
                self.report(f"payment provider: {resent} undelivered IPN(s) sent again")
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
    ) -> list[InvariantResult]:
        assert state.postgres is not None
        assert state.app is not None
        names = list(self.scenario.invariants)
        capacity = _pool_capacity(state)
        found = await asyncio.to_thread(
            check_database,
            postgres.with_dbname(state.postgres.dsn, "exchange"),
            names,
            operations=result.operations if result is not None else [],
            capacity=capacity,
            since=since,
            payments=payments,
        )
        if "no_toxic_left" in names:
            found.append(
                InvariantResult(
                    "no_toxic_left",
                    not self.record.residue,
                    len(state.links),
                    list(self.record.residue),
                )
            )
        return found

    # -- verdicts ------------------------------------------------------------------------------

    def _judge(self, result: LoadResult | None, invariants: list[InvariantResult]) -> None:
        record = self.record
        outcome = record.outcome
        outcome.invariants = invariants
        if result is None:
            outcome.harness_errors.append("the load produced no result")
            return
        record.samples = len(result.samples)
        record.operations = outcome_counts(result.operations)
        record.saturated = result.saturated
        phases = [p for p in record.phases if p.end > p.start]
        faulted = {p.name for p in self.scenario.timeline if p.faults}
        by_phase = assign(result.samples, phases, faulted)
        seconds = {p.name: p.end - p.start for p in phases}
        record.stats = {
            name: {g: _plain(s) for g, s in by_group(samples, seconds[name]).items()}
            for name, samples in by_phase.items()
        }
        judged = _Judged(by_phase, seconds)
        outcome.thresholds = self._thresholds(judged)
        outcome.validity = self._validity(result, judged)
        if record.recovered_after is None:
            outcome.thresholds.append(
                ThresholdVerdict(
                    "*",
                    "after",
                    "ready within 15s",
                    False,
                    None,
                    RECOVERY_DEADLINE,
                    0,
                    "the app's services were not all ready after the last fault was reverted",
                )
            )

    def _thresholds(self, judged: _Judged) -> list[ThresholdVerdict]:
        verdicts = []
        for phase in self.scenario.timeline:
            for glob, threshold in self.scenario.thresholds_in(phase.name):
                metrics = {name: _metrics(judged.stats(glob, name)) for name in judged.phases}
                current = metrics.get(phase.name, {})
                verdict = evaluate(threshold, current, metrics)
                verdicts.append(
                    ThresholdVerdict(
                        glob,
                        phase.name,
                        str(threshold),
                        verdict.passed and phase.name in judged.phases,
                        _finite(verdict.measured),
                        _finite(verdict.expected),
                        int(current.get("count", 0)),
                        "" if verdict.passed else verdict.text,
                    )
                )
        return verdicts

    def _validity(self, result: LoadResult, judged: _Judged) -> list[ValidityCheck]:
        checks = [
            ValidityCheck(
                "load generator not saturated",
                not result.saturated,
                "Locust warned that a load process was CPU-bound" if result.saturated else "",
            )
        ]
        # Too few samples make a pass meaningless, not a breach: a threshold that failed on
        # five requests that all hung still failed.
        all_passed: dict[tuple[str, str], bool] = {}
        for verdict in self.record.outcome.thresholds:
            key = (verdict.group, verdict.phase)
            all_passed[key] = all_passed.get(key, True) and verdict.passed
        for (glob, phase), passed in all_passed.items():
            if passed:
                count = judged.stats(glob, phase).count if phase in judged.phases else 0
                checks.append(
                    ValidityCheck(
                        f"enough samples: {glob} in {phase}",
                        count >= MIN_SAMPLES,
                        f"{count} requests (at least {MIN_SAMPLES} needed)",
                        guards_pass_only=True,
                    )
                )
        baseline = next((p.name for p in self.scenario.timeline if not p.faults), None)
        for timeline_phase in self.scenario.timeline:
            for spec in timeline_phase.faults:
                checks.append(self._bit(spec, timeline_phase.name, baseline, judged))
        return checks

    def _bit(
        self, spec: FaultSpec, phase: str, baseline: str | None, judged: _Judged
    ) -> ValidityCheck:
        """Vacuity: did this fault measurably hurt its target during its phase?"""
        name = f"fault had an effect: {fault_for(spec).describe()} in {phase}"
        if isinstance(spec, DbRestartSpec | DbCrashSpec):
            restarted = any(
                "applied" in e for p in self.record.phases if p.name == phase for e in p.events
            )
            return ValidityCheck(name, restarted, "the cluster was restarted" if restarted else "")
        target = spec.target_service
        glob = f"{target}.*" if target else "*"
        if phase not in judged.phases:
            return ValidityCheck(name, False, "the phase did not run")
        during = judged.stats(glob, phase)
        if during.count == 0:
            return ValidityCheck(name, False, f"no request to {glob} meanwhile")
        if baseline is None or baseline not in judged.phases:
            bit = during.error_rate >= EFFECT_ERROR_RATE
            return ValidityCheck(name, bit, f"error rate {during.error_rate:.1%} (no baseline)")
        before = judged.stats(glob, baseline)
        slower = during.p99 >= max(before.p99 * EFFECT_LATENCY_FACTOR, before.p99 + EFFECT_MIN_MS)
        erring = during.error_rate - before.error_rate >= EFFECT_ERROR_RATE
        detail = (
            f"{glob}: {during.count} requests, error rate {before.error_rate:.1%} -> "
            f"{during.error_rate:.1%}, p99 {before.p99:.0f} -> {during.p99:.0f} ms"
        )
        # Few requests can still show the effect: a fault that makes every request slow or
        # failing leaves few of them. What few requests cannot show is the absence of one.
        return ValidityCheck(name, slower or erring, detail)


@dataclass
class _Judged:
    """The samples of each phase, and their statistics per request-group glob."""

    by_phase: Mapping[str, list[Sample]]
    seconds: Mapping[str, float]
    _cache: dict[tuple[str, str], GroupStats] = field(default_factory=dict)

    @property
    def phases(self) -> list[str]:
        return list(self.by_phase)

    def stats(self, glob: str, phase: str) -> GroupStats:
        key = (glob, phase)
        if key not in self._cache:
            chosen = matching(self.by_phase[phase], glob)
            self._cache[key] = group_stats(glob, chosen, self.seconds[phase])
        return self._cache[key]


def assign(
    samples: Sequence[Sample], phases: Sequence[PhaseRecord], faulted: set[str]
) -> dict[str, list[Sample]]:
    """The samples of each phase: by start time, except that a request still in flight when
    the next phase applied its faults belongs to that phase — it met the fault, and must not
    count against the steady state before it. (A request in flight when a fault is reverted
    stays in the fault's phase, where it started.)"""
    found: dict[str, list[Sample]] = {p.name: [] for p in phases}
    for sample in samples:
        for index, phase in enumerate(phases):
            if not phase.start <= sample.start < phase.end:
                continue
            chosen = phase
            following = phases[index + 1] if index + 1 < len(phases) else None
            if following is not None and following.name in faulted and sample.end > following.start:
                chosen = following
            found[chosen.name].append(sample)
            break
    return found


def _metrics(stats: GroupStats) -> dict[str, float]:
    return {k: float(v) for k, v in stats.as_dict().items() if isinstance(v, int | float)}


def _plain(stats: GroupStats) -> dict[str, object]:
    return {k: _finite(v) if isinstance(v, float) else v for k, v in stats.as_dict().items()}


def _finite(value: float | None) -> float | None:
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return None
    return value


def _pool_gauges(text: str) -> dict[str, dict[str, float]]:
    gauges: dict[str, dict[str, float]] = {}
    for metric, service, value in _METRIC.findall(text):
        if metric in {"db_pool_size", "db_pool_in_use", "db_pool_waiting", "db_pool_free"}:
            gauges.setdefault(service, {})[metric.removeprefix("db_pool_")] = float(value)
    return gauges


def _connections(admin_dsn: str) -> dict[str, dict[str, int]]:
    conn = postgres.connect(admin_dsn, timeout=1)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT application_name, state, count(*) FROM pg_stat_activity "
                "WHERE application_name <> '' AND pid <> pg_backend_pid() "
                "GROUP BY application_name, state"
            )
            found: dict[str, dict[str, int]] = {}
            for name, state, count in cur.fetchall():
                found.setdefault(name, {})[state or "none"] = int(count)
            return found
    except Exception as exc:
        raise HarnessError(f"sampling pg_stat_activity: {exc}") from exc
    finally:
        conn.close()


def _database_now(admin_dsn: str) -> datetime:
    conn = postgres.connect(admin_dsn, timeout=5)
    try:
        with conn.cursor() as cur:
            return database_now(cur)
    finally:
        conn.close()


def _pool_capacity(state: StackState) -> dict[str, int]:
    """How many connections each pool name may hold, over all the app's workers."""
    assert state.app is not None
    settings = json.loads(state.app.settings_file.read_text())
    workers = state.app.workers
    if settings["architecture"] == "legacy":
        return {"shared": settings["legacy_database"]["max_size"] * workers}
    return {s: pool["max_size"] * workers for s, pool in settings["databases"].items()}


def _wait_ready(url: str) -> float | None:
    """Seconds until ``/health/ready`` answers 200 after the last revert, or None."""
    started = time.monotonic()
    while time.monotonic() - started < RECOVERY_DEADLINE:
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(f"{url}/health/ready", timeout=2) as answer,  # noqa: S310
        ):
            if answer.status == 200:
                return time.monotonic() - started
        time.sleep(0.1)
    return None


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
) -> RunRecord:
    """Run ``scenario``; SIGINT and SIGTERM stop it cleanly (every fault reverted)."""
    runner = ScenarioRunner(
        scenario, settings, source=source, seed=seed, reuse=reuse, report=report
    )
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def interrupt() -> None:
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    try:
        return await _uncancellable(runner.run())
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _uncancellable(work: Coroutine[Any, Any, RunRecord]) -> RunRecord:
    """Run ``work`` in its own task; a cancellation of the caller is passed on once."""
    inner: asyncio.Task[RunRecord] = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(inner)
    except asyncio.CancelledError:
        inner.cancel()
        return await inner
