"""Run Locust in its own processes and keep every sample.

Locust monkey-patches the standard library with gevent when it is imported, which does not
mix with the asyncio code of the app and the chaos runner: this module never imports it. It
starts ``locust`` processes (one local process, or a master and N workers), which write every
request to files in a samples folder (``load/recorder.py``), and reads them back.

    run = LoadRun(plan)
    run.start()
    run.spawned()            # True once every user is spawned
    run.started()            # how many users are through on_start (signed up)
    ...                      # the chaos runner applies faults meanwhile
    run.finish()             # end it now, as its run time would (or let the run time end it)
    result = run.wait()      # or run.stop() to end early, losing the requests in flight
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from isolation_harness.load.kinds import FINISH_SIGNAL, KINDS
from isolation_harness.load.operations import Operation, read_operations
from isolation_harness.load.samples import (
    SPAWNED_FILE,
    Sample,
    SampleCounter,
    read_samples,
    read_summaries,
    started_users,
)
from isolation_harness.load.stats import GroupStats, Window, by_group, in_window
from isolation_harness.topology.environment import (
    ENV_ADMIN_TOKEN,
    ENV_MIX,
    ENV_SAMPLES_DIR,
    load_variables,
)
from isolation_harness.topology.ports import free_port

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
STOP_TIMEOUT = 5  # seconds Locust lets users finish their task when the run ends
#: how often :meth:`LoadRun.wait` looks whether Locust has exited: every scenario waits for
#: it once, and a half-second poll cost each a quarter of a second on average
EXIT_POLL = 0.05


class Watcher(Protocol):
    """Whoever stops the processes of a run, and removes its folders, if the run's own
    process dies without doing so (``kill -9``): the harness's warden."""

    def watch_pid(self, pid: int) -> None: ...

    def watch_folder(self, folder: Path) -> None: ...


class LoadError(Exception):
    """The load could not be run as asked (bad plan, Locust failed to start)."""


@dataclass(frozen=True)
class LoadPlan:
    """What to run: how many users of which kinds, how fast, how long, against what."""

    host: str
    users: int
    spawn_rate: float
    duration: float
    mix: Mapping[str, int]
    admin_token: str
    #: 0: one local Locust process; N: a master and N worker processes
    workers: int = 0
    locustfile: Path = LOCUSTFILE
    samples_dir: Path | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.users < 1:
            raise LoadError(f"users must be at least 1, not {self.users}")
        if self.spawn_rate <= 0:
            raise LoadError(f"spawn rate must be positive, not {self.spawn_rate}")
        if self.duration <= 0:
            raise LoadError(f"duration must be positive, not {self.duration}")
        if self.workers < 0:
            raise LoadError(f"workers must be 0 (local) or more, not {self.workers}")
        unknown = sorted(set(self.mix) - set(KINDS))
        if unknown:
            raise LoadError(f"unknown user kind {unknown[0]!r} (known: {', '.join(KINDS)})")
        if not self.mix:
            raise LoadError("the mix names no user kind")


@dataclass
class LoadResult:
    """Every sample of a run, and what can be computed from them."""

    plan: LoadPlan
    samples: list[Sample]
    #: every money-moving request, as the client sent it and as it ended
    operations: list[Operation]
    started_at: float
    ended_at: float
    #: Locust warned that a load-generating process was CPU-bound: latencies are suspect
    saturated: bool
    summaries: list[dict[str, Any]]

    @property
    def seconds(self) -> float:
        return max(self.ended_at - self.started_at, 1e-9)

    def stats(self, window: Window | None = None) -> dict[str, GroupStats]:
        """Statistics per request group, over the whole run or one window of it."""
        chosen = in_window(self.samples, window)
        return by_group(chosen, window.seconds if window is not None else self.seconds)


class LoadRun:
    """One run of Locust processes; always stopped, whatever happens to the caller."""

    def __init__(self, plan: LoadPlan) -> None:
        self.plan = plan
        self._own_dir = plan.samples_dir is None
        self.samples_dir = plan.samples_dir or Path(tempfile.mkdtemp(prefix="harness-load-"))
        self.samples_dir.mkdir(parents=True, exist_ok=True)
        self._counter = SampleCounter(self.samples_dir)
        self._processes: list[subprocess.Popen[bytes]] = []
        self._logs: list[Path] = []
        self._watcher: Watcher | None = None
        self.started_at = 0.0

    # -- life cycle --------------------------------------------------------------------------

    def start(self, watcher: Watcher | None = None) -> None:
        """Start the Locust processes (returns at once); ``watcher`` is told of each, and of
        the samples folder when this run made it, to stop them if this process dies."""
        plan = self.plan
        self._watcher = watcher
        if watcher is not None and self._own_dir:
            watcher.watch_folder(self.samples_dir)
        common = [
            sys.executable, "-m", "locust", "-f", str(plan.locustfile), "--headless",
            "--only-summary", "-H", plan.host, "--exit-code-on-error", "0",
            "--stop-timeout", str(STOP_TIMEOUT), "--loglevel", "WARNING",
        ]  # fmt: skip
        # Locust takes whole seconds only: the run time is a safety net, rounded up.
        run = [
            "-u", str(plan.users), "-r", f"{plan.spawn_rate:g}",
            "-t", f"{math.ceil(plan.duration)}s",
        ]  # fmt: skip
        self.started_at = time.time()
        if plan.workers == 0:
            self._spawn([*common, *run], "locust")
            return
        port = free_port()  # not from the ephemeral range the load's connections use
        self._spawn(
            [*common, *run, "--master", "--master-bind-host", "127.0.0.1",
             "--master-bind-port", str(port), "--expect-workers", str(plan.workers),
             "--expect-workers-max-wait", "30"],
            "locust-master",
        )  # fmt: skip
        for n in range(plan.workers):
            self._spawn(
                [*common, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
                f"locust-worker-{n}",
            )

    def _spawn(self, argv: list[str], name: str) -> None:
        log = self.samples_dir / f"{name}.log"
        self._logs.append(log)
        with log.open("wb") as handle:
            process = subprocess.Popen(
                argv,
                stdout=handle,
                stderr=subprocess.STDOUT,
                env=self._env(),
                start_new_session=True,
            )
            self._processes.append(process)
        if self._watcher is not None:
            self._watcher.watch_pid(process.pid)

    def _env(self) -> dict[str, str]:
        # The plan says everything about the load: a variable of the load's own left in this
        # process's environment (a shell where Locust was run by hand) must not change it.
        inherited = {k: v for k, v in os.environ.items() if k not in load_variables()}
        return {
            **inherited,
            **self.plan.extra_env,
            ENV_ADMIN_TOKEN: self.plan.admin_token,
            ENV_MIX: ",".join(f"{k}={w}" for k, w in self.plan.mix.items()),
            ENV_SAMPLES_DIR: str(self.samples_dir),
        }

    @property
    def pids(self) -> list[int]:
        """The Locust processes' pids (their own children are theirs)."""
        return [p.pid for p in self._processes]

    @property
    def running(self) -> bool:
        return any(p.poll() is None for p in self._processes)

    def spawned(self) -> bool:
        """True once Locust has spawned every user of the plan (its first process says so)."""
        return (self.samples_dir / SPAWNED_FILE).exists()

    def started(self) -> int:
        """How many users, in every Locust process, are through their ``on_start``."""
        return started_users(self.samples_dir)

    def finish(self) -> None:
        """End the run now as its run time running out would: every user finishes its task
        in hand and Locust writes every sample; :meth:`wait` then collects them."""
        if self._processes and self._processes[0].poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._processes[0].send_signal(FINISH_SIGNAL)

    def count(self) -> int:
        """Samples written so far (for progress)."""
        return self._counter.update()

    def wait(
        self, progress: Callable[[float, int], None] | None = None, interval: float = 0.5
    ) -> LoadResult:
        """Wait for the run to end (``progress(elapsed, samples)`` every ``interval``
        seconds meanwhile); collect it. The end is seen within :data:`EXIT_POLL` seconds."""
        deadline = self.started_at + self.plan.duration + STOP_TIMEOUT + 60
        next_progress = 0.0
        try:
            while self.running:
                now = time.time()
                if progress is not None and now >= next_progress:
                    progress(now - self.started_at, self.count())
                    next_progress = now + interval
                if now > deadline:
                    raise LoadError("Locust did not stop after its run time")
                time.sleep(EXIT_POLL)
            self._check_exits()
            return self._collect()
        finally:
            self.stop()

    def stop(self) -> None:
        """End the run now: SIGTERM (Locust writes its files, without the requests still in
        flight), then SIGKILL."""
        for process in self._processes:
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT + 5
        for process in self._processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()

    def cleanup(self) -> None:
        """Delete the samples folder if this run made it."""
        if self._own_dir:
            shutil.rmtree(self.samples_dir, ignore_errors=True)

    # -- results -----------------------------------------------------------------------------

    def _check_exits(self) -> None:
        for process, log in zip(self._processes, self._logs, strict=True):
            # Locust exits 0, or 1 when requests failed (kept by --exit-code-on-error 0);
            # anything else is Locust itself failing.
            if process.returncode not in (0, 1, -signal.SIGTERM):
                tail = _tail(log)
                raise LoadError(f"Locust exited with {process.returncode}: {tail}")

    def _collect(self) -> LoadResult:
        samples = read_samples(self.samples_dir)
        summaries = read_summaries(self.samples_dir)
        ended = max((s.end for s in samples), default=time.time())
        started = min((s.start for s in samples), default=self.started_at)
        return LoadResult(
            plan=self.plan,
            samples=samples,
            operations=read_operations(self.samples_dir),
            started_at=min(started, self.started_at),
            ended_at=ended,
            saturated=any(s.get("cpu_warning") for s in summaries),
            summaries=summaries,
        )


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _tail(log: Path) -> str:
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "no output"


def run_load(
    plan: LoadPlan,
    progress: Callable[[float, int], None] | None = None,
    watch: Callable[[Path], AbstractContextManager[Watcher]] | None = None,
) -> LoadResult:
    """Run ``plan`` to its end and return every sample; ``watch(log)``, if given, is the
    watcher that stops the Locust processes and removes the samples folder if this process
    dies (the harness's warden), writing to ``log``.

    The samples folder, when the run made its own, is deleted once read; after a failure it
    is kept, with the Locust logs, for the error to be chased.
    """
    run = LoadRun(plan)
    watching = watch(run.samples_dir / "warden.log") if watch is not None else None
    with watching or contextlib.nullcontext() as watcher:
        run.start(watcher)
        result = run.wait(progress)
    run.cleanup()
    return result
