"""Scheduled jobs: each one a task that runs its use case every interval until cancelled.

=========================  =================================  ==============================
job                        what it does                       setting (interval)
=========================  =================================  ==============================
expire_unpaid_deposits     ``waiting`` deposits older than    ``expire_deposits_every``
                           ``deposit_expiry_seconds`` ->
                           ``expired`` (no other state)
expire_quotes              open swap quotes past their        ``expire_quotes_every``
                           deadline -> ``expired``
expire_express_quotes      open express quotes past their     ``expire_quotes_every``
                           deadline -> ``expired``
settle_interrupted_        swap executions and express        ``expire_quotes_every``
executions                 orders cut short (the wallet's
                           answer lost), two service time
                           limits past the deadline ->
                           executed / filled if the wallet
                           posted them, else expired /
                           rejected, the key spent
expire_trades              unpaid P2P trades past their       ``expire_trades_every``
                           deadline -> ``expired``, the
                           escrow back to the seller
dispute_unreleased_trades  paid P2P trades not released for   ``expire_trades_every``
                           ``trade_release_seconds`` ->
                           ``disputed`` (the admin decides)
resume_interrupted_trades  P2P transitions begun two service  ``expire_trades_every``
                           time limits ago, never finished
                           (their request cut short) ->
                           finished
prune_price_history        the feed's history older than      ``prune_price_history_every``
                           ``price_history_seconds``
=========================  =================================  ==============================

The app's cleanup context starts the tasks (the first run one interval after start) and
stops them when the app stops (:func:`cancel_and_wait`: cancelled until they end). A failing
tick (a database down, a time limit, a bug) is logged and recorded in the job's status;
the loop sleeps its interval and tries again.

**Several workers.** Every worker process, and every app server, runs every job: there is
no leader to elect and none to lose. Each job is safe for it by its use case, not by a lock
here:

- deposits and swap quotes: one ``UPDATE`` whose rows are picked ``FOR UPDATE SKIP
  LOCKED`` and whose state (and deadline) is judged again under the row lock. A row expires
  once, a row that moved on meanwhile (an IPN, an execution) is left alone, and the ids a
  run returns are the rows *that run* expired. Express quotes: express's own account
  (:meth:`ExpressService.expire_quotes`).
- trades (expired, disputed, resumed): P2P's own protocol (the trade's row lock, the
  intent recorded before the wallet moves, the wallet idempotent per escrow reference):
  the escrow moves once, and a trade another worker moved first is refused as a
  conflict, logged and skipped.
- price history: a ``DELETE`` of rows picked ``FOR UPDATE SKIP LOCKED``.

**Idempotency keys: nothing to clean up.** No table holds idempotency keys on their own:
each key is a column of the row it protects: the wallet's ledger transactions (append-only:
a trigger refuses ``UPDATE`` and ``DELETE``), deposits, P2P trades, express orders and
swap executions (``swap.quotes.execution_key``). The key *is* the record that a request was served;
deleting it would mean deleting the record of a movement of money, or letting a late retry
of an old request move the money a second time. Keys live as long as their rows, which are
the audit trail, so no job deletes them.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from isolation_harness.reference_app.clock import utc_now
from isolation_harness.reference_app.errors import AppError
from isolation_harness.reference_app.services.background.domain import (
    JobName,
    JobOutcome,
    JobRun,
    JobStatus,
)
from isolation_harness.reference_app.services.background.service import BackgroundService
from isolation_harness.reference_app.settings import AppSettings

log = logging.getLogger("reference_app.background")


#: how long to wait for cancelled tasks before cancelling them again
RECANCEL_AFTER = 0.1


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until every one has ended.

    One cancellation is not enough: on Python 3.11 ``asyncio.wait_for``, with which aiopg
    awaits every query, swallows a cancellation that arrives as the query completes, and
    the task runs on into its next sleep. So the tasks still running are cancelled again
    every :data:`RECANCEL_AFTER` seconds until they end.
    """
    tasks = list(tasks)
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_AFTER)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s ended with an error", task.get_name(), exc_info=task.exception())


@dataclass(frozen=True)
class Job:
    """A use case run on a schedule: ``run(now)`` returns what it changed (or how many)."""

    name: JobName
    interval: float
    run: Callable[[datetime], Awaitable[Sequence[uuid.UUID] | int]]


def scheduled_jobs(background: BackgroundService, settings: AppSettings) -> list[Job]:
    """The app's jobs, with their intervals from ``settings``."""
    return [
        Job(JobName.EXPIRE_DEPOSITS, settings.expire_deposits_every,
            background.expire_unpaid_deposits),
        Job(JobName.EXPIRE_QUOTES, settings.expire_quotes_every, background.expire_quotes),
        Job(JobName.EXPIRE_EXPRESS_QUOTES, settings.expire_quotes_every,
            background.expire_express_quotes),
        Job(JobName.SETTLE_EXECUTIONS, settings.expire_quotes_every,
            background.settle_interrupted_executions),
        Job(JobName.EXPIRE_TRADES, settings.expire_trades_every, background.expire_trades),
        Job(JobName.DISPUTE_TRADES, settings.expire_trades_every,
            background.dispute_unreleased_trades),
        Job(JobName.RESUME_TRADES, settings.expire_trades_every,
            background.resume_interrupted_trades),
        Job(JobName.PRUNE_PRICE_HISTORY, settings.prune_price_history_every,
            background.prune_price_history),
    ]  # fmt: skip


class JobRunner:
    """Runs each job on its own schedule, and keeps each job's status in this worker."""

    def __init__(self, jobs: Sequence[Job], *, clock: Callable[[], datetime] = utc_now) -> None:
        self.jobs = {job.name: job for job in jobs}
        self._status = {job.name: JobStatus(job.name, job.interval) for job in jobs}
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []

    def status(self) -> list[JobStatus]:
        """Each job's runs, failures and last run in this worker, in the jobs' order."""
        return list(self._status.values())

    async def run_once(self, name: JobName, now: datetime | None = None) -> JobRun:
        """Run the job once (at ``now``, default the clock); record and return the outcome.

        A failure is logged and recorded, not raised: the caller is a loop that must go on.
        """
        job = self.jobs[name]
        started = self._clock()
        try:
            changed = await job.run(now if now is not None else started)
        except AppError as exc:  # a dependency failed: its message says which and why
            log.warning("job %s failed: %s (%s)", name, exc.message, exc.service)
            run = JobRun(name, started, self._clock(), JobOutcome.FAILED,
                         error=f"{exc.service}: {exc.code}: {exc.message}")  # fmt: skip
        except Exception as exc:
            log.exception("job %s failed", name)
            run = JobRun(name, started, self._clock(), JobOutcome.FAILED,
                         error=f"{type(exc).__name__}: {exc}")  # fmt: skip
        else:
            count = changed if isinstance(changed, int) else len(changed)
            if count:
                log.info("job %s: %d changed", name, count)
            run = JobRun(name, started, self._clock(), JobOutcome.OK, count=count)
        self._status[name].record(run)
        return run

    async def _every(self, job: Job) -> None:
        while True:
            await asyncio.sleep(job.interval)
            await self.run_once(job.name)

    def start(self) -> None:
        """Start one task per job."""
        self._tasks = [
            asyncio.create_task(self._every(job), name=f"job-{job.name}")
            for job in self.jobs.values()
        ]

    async def stop(self) -> None:
        """Cancel the tasks and wait for them (a tick under way is cut short)."""
        await cancel_and_wait(self._tasks)
        self._tasks = []
