"""Faults on the database itself, through ``pg_ctl`` and signals: restart, crash, stop.

Only a cluster the harness runs can be faulted (not one at ``HARNESS_PG_DSN``). ``pg_ctl``
runs in a thread, which a cancelled ``apply()`` could not stop anyway: ``revert()`` waits for
it, then makes sure the cluster runs. Each fault hurts every service (no target).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Literal

from pydantic import PrivateAttr

from isolation_harness.chaos.errors import NotSupportedError
from isolation_harness.chaos.faults.base import Fault, Moment, Signature
from isolation_harness.chaos.faults.context import FaultContext
from isolation_harness.chaos.stack import postgres
from isolation_harness.chaos.stack.postgres import LocalCluster

#: seconds a database control (stop, start, restart) may take
DB_TIMEOUT = 30.0
_SIGNATURE = Signature("database", fails_fast=True)


class _ClusterFault(Fault):
    _touched: bool = PrivateAttr(default=False)

    @property
    def target_service(self) -> str | None:
        return None

    @property
    def signature(self) -> Signature:
        return _SIGNATURE

    def _cluster(self, ctx: FaultContext, what: str) -> LocalCluster:
        if ctx.cluster is None:
            raise NotSupportedError(
                f"cannot {what}: the harness does not control this PostgreSQL server",
                "unset HARNESS_PG_DSN so that the harness runs a cluster of its own",
            )
        return ctx.cluster

    async def _in_thread(self, work: Callable[[], None]) -> None:
        self._touched = True
        await self._shielded(asyncio.to_thread(work))

    async def revert(self, ctx: FaultContext) -> None:
        await self._settle()
        if not self._touched or ctx.cluster is None:
            return
        await asyncio.to_thread(ctx.cluster.start, DB_TIMEOUT)
        self._touched = False

    async def active(self, ctx: FaultContext) -> bool:
        """True while the cluster is down."""
        return ctx.cluster is not None and ctx.cluster.postmaster() is None


class _BackByItself(_ClusterFault):
    """A restart or a crash: the database is back when ``apply()`` returns. Its evidence is
    the postmaster's start time before and after."""

    restored_by_apply = True

    async def observe(self, ctx: FaultContext, when: Moment) -> dict[str, Any]:
        if ctx.cluster is None or when == "reverted":
            return {}
        started = await asyncio.to_thread(postmaster_start, ctx.cluster)
        return {f"postmaster_start_{when}": started}


class DbRestart(_BackByItself):
    """Restart PostgreSQL at the start of the phase with ``pg_ctl restart``: ``fast`` (clean
    shutdown) or ``immediate`` (no checkpoint: crash recovery at start)."""

    type: Literal["db_restart"] = "db_restart"
    mode: Literal["fast", "immediate"] = "fast"

    def describe(self, ctx: FaultContext | None = None) -> str:
        return f"PostgreSQL restart ({self.mode})"

    async def apply(self, ctx: FaultContext) -> None:
        cluster = self._cluster(ctx, "restart PostgreSQL")
        mode = self.mode
        await self._in_thread(lambda: cluster.restart(mode, DB_TIMEOUT))


class DbCrash(_BackByItself):
    """Kill PostgreSQL at the start of the phase (SIGKILL of the postmaster and its
    backends, as a crash of its host), then start it again (with crash recovery)."""

    type: Literal["db_crash"] = "db_crash"

    def describe(self, ctx: FaultContext | None = None) -> str:
        return "PostgreSQL crash (SIGKILL of the postmaster), then start"

    async def apply(self, ctx: FaultContext) -> None:
        cluster = self._cluster(ctx, "crash PostgreSQL")

        def crash_and_start() -> None:
            cluster.crash()
            cluster.start(DB_TIMEOUT)

        await self._in_thread(crash_and_start)


class DbStop(_ClusterFault):
    """Stop PostgreSQL for the whole phase (``fast``: clean; ``immediate``: abrupt); start it
    again when the phase ends and wait until it accepts connections. Its evidence: the
    postmaster was gone."""

    type: Literal["db_stop"] = "db_stop"
    mode: Literal["fast", "immediate"] = "fast"

    def describe(self, ctx: FaultContext | None = None) -> str:
        return f"PostgreSQL stopped ({self.mode})"

    async def apply(self, ctx: FaultContext) -> None:
        cluster = self._cluster(ctx, "stop PostgreSQL")
        mode = self.mode
        await self._in_thread(lambda: cluster.stop(mode, DB_TIMEOUT))

    async def observe(self, ctx: FaultContext, when: Moment) -> dict[str, Any]:
        if ctx.cluster is None or when != "after":
            return {}
        return {"postmaster_down": ctx.cluster.postmaster() is None}


def postmaster_start(cluster: LocalCluster) -> str | None:
    """When the cluster's postmaster started (None: it does not answer)."""
    conn = None
    try:
        conn = postgres.connect(cluster.dsn(), timeout=2)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_postmaster_start_time()::text")
            row = cur.fetchone()
            return None if row is None else str(row[0])
    except Exception:
        return None
    finally:
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
