"""PostgreSQL access: one aiopg pool per service (isolated design) or one shared pool (legacy).

aiopg does not check a connection on acquire, so after a database restart every idle
connection is dead and the next request on each would fail. :class:`ManagedPool` checks
each connection before handing it out: an idle connection whose socket is readable has been
closed by the server (or by Toxiproxy), so it is discarded and another one taken. Thus after
a restart or crash only the requests in flight fail, none after the database is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiopg
import psycopg2
import psycopg2.extensions

from isolation_harness.reference_app.faults import FaultSwitches
from isolation_harness.reference_app.metrics import AppMetrics, PoolStats
from isolation_harness.reference_app.settings import PoolSettings

#: errors after which a connection cannot be trusted: it is closed rather than reused
BROKEN_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
    TimeoutError,
    asyncio.CancelledError,
    OSError,
)
#: seconds the app's shutdown waits for connections in use before closing them
CLOSE_GRACE = 1.0


class PoolTimeout(Exception):
    """No connection could be had within the acquire timeout."""

    def __init__(self, service: str, timeout: float) -> None:
        super().__init__(f"no {service} database connection within {timeout:g} s")
        self.service = service
        self.timeout = timeout


class ManagedPool:
    """An aiopg pool with an acquire timeout, a liveness check and metrics."""

    def __init__(self, name: str, settings: PoolSettings, metrics: AppMetrics) -> None:
        self.name = name
        self.settings = settings
        self._metrics = metrics
        self._pool: aiopg.Pool | None = None
        self._waiting = 0
        self._leaked = 0  # connections a leak fault holds
        self._dsn = psycopg2.extensions.make_dsn(
            settings.dsn,
            application_name=name,
            options=f"-c statement_timeout={settings.statement_timeout_ms}",
        )

    async def open(self) -> None:
        """Create the pool without connecting: a service whose database is down at start
        must not stop the app from starting (it answers 503 until the database is back)."""
        # Exported from the start, at 0: a counter that appears only once something went
        # wrong cannot tell "none happened" from "not measured".
        self._metrics.acquire_timeouts.labels(self.name)
        self._metrics.dead_connections.labels(self.name)
        self._pool = aiopg.Pool(
            self._dsn,
            minsize=self.settings.min_size,
            maxsize=self.settings.max_size,
            # aiopg takes None for "no timeout" (legacy design) though its hint says float.
            timeout=self.settings.acquire_timeout,  # type: ignore[arg-type]
            enable_json=False,
            enable_hstore=False,
            enable_uuid=False,
            echo=False,
            on_connect=None,
            pool_recycle=-1,
        )

    async def close(self) -> None:
        """Close the pool; a connection still in use after :data:`CLOSE_GRACE` seconds (a
        call hung, or one the legacy design leaked) is closed under its user."""
        if self._pool is None:
            return
        self._pool.close()
        try:
            async with asyncio.timeout(CLOSE_GRACE):
                await self._pool.wait_closed()
        except TimeoutError:
            self._pool.terminate()
            await self._pool.wait_closed()

    @property
    def pool(self) -> aiopg.Pool:
        if self._pool is None:
            raise RuntimeError(f"pool {self.name} is not open")
        return self._pool

    async def acquire(self) -> aiopg.Connection:
        """A live connection, or :class:`PoolTimeout` after the acquire timeout."""
        timeout = self.settings.acquire_timeout
        started = time.monotonic()
        self._waiting += 1
        try:
            async with asyncio.timeout(timeout):
                while True:
                    conn = await self.pool.acquire()
                    if _alive(conn):
                        return conn
                    self._metrics.dead_connections.labels(self.name).inc()
                    self.release(conn, broken=True)
        except TimeoutError:
            self._metrics.acquire_timeouts.labels(self.name).inc()
            raise PoolTimeout(self.name, timeout or 0) from None
        finally:
            self._waiting -= 1
            self._metrics.acquire_wait.labels(self.name).observe(time.monotonic() - started)

    def release(self, conn: aiopg.Connection, *, broken: bool = False) -> None:
        """Give ``conn`` back; a broken one is closed, and the pool replaces it."""
        if broken and not conn.closed:
            conn.close()
        self.pool.release(conn)

    def stats(self) -> PoolStats:
        pool = self._pool
        if pool is None:
            return PoolStats(0, 0, 0, self._waiting, self.settings.max_size)
        return PoolStats(
            size=pool.size,
            in_use=pool.size - pool.freesize,
            free=pool.freesize,
            waiting=self._waiting,
            max_size=self.settings.max_size,
            leaked=self._leaked,
        )

    async def hold_all(self) -> asyncio.Task[None]:
        """Take every connection the pool can give and hold it until cancelled (leak fault)."""
        ready = asyncio.Event()

        async def hold() -> None:
            held: list[aiopg.Connection] = []
            try:
                while len(held) < self.settings.max_size:
                    try:
                        held.append(await self.pool.acquire())
                        self._leaked += 1
                    except Exception:  # keep what we have, retry soon
                        ready.set()
                        await asyncio.sleep(0.1)
                ready.set()
                await asyncio.Event().wait()
            finally:
                while held:
                    self.release(held.pop())
                    self._leaked -= 1

        task = asyncio.create_task(hold(), name=f"leak-{self.name}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await ready.wait()
        return task


def _alive(conn: aiopg.Connection) -> bool:
    """False if the server closed the connection while it was idle in the pool.

    An idle connection has nothing to read: a readable socket means end-of-file or the
    server's farewell ("terminating connection due to administrator command").
    """
    if conn.closed:
        return False
    try:
        readable, _, _ = select.select([conn.raw.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg2.InterfaceError):
        return False
    return not readable


def _server_cancelled(exc: asyncio.CancelledError) -> psycopg2.extensions.QueryCanceledError | None:
    """The statement PostgreSQL cancelled, if that is what ``exc`` stands for.

    aiopg reports a statement the server cancelled (``statement_timeout``) as
    :class:`asyncio.CancelledError`, which would cancel the whole request: the client would
    be dropped without an answer. A real cancellation of the task (a time limit, a client
    gone) is not that, and is left alone.
    """
    cause = exc.__context__
    task = asyncio.current_task()
    if isinstance(cause, psycopg2.extensions.QueryCanceledError) and (
        task is None or task.cancelling() == 0
    ):
        return cause
    return None


@contextlib.contextmanager
def statement_cancellations_logged_once() -> Iterator[None]:
    """Keep aiopg from logging each statement PostgreSQL cancelled as an unhandled error.

    aiopg raises it (see :func:`_server_cancelled`) and also hands it to the event loop's
    exception handler, which logs an ERROR with a traceback for an error the service
    answers (503 ``statement_timeout``, logged once as such). Every other context goes to
    the handler there was before.
    """
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), psycopg2.extensions.QueryCanceledError):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    try:
        yield
    finally:
        loop.set_exception_handler(previous)


class ServiceDatabase:
    """One service's way to its data: its own pool, or the shared one in the legacy design."""

    def __init__(self, service: str, pool: ManagedPool, faults: FaultSwitches) -> None:
        self.service = service
        self.pool = pool
        self._faults = faults

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[aiopg.Connection]:
        """A connection for the duration of the block; closed if the block broke it."""
        conn = await self.pool.acquire()
        broken = True
        try:
            await self._faults.on_connection(self.service)
            yield conn
            broken = False
        except asyncio.CancelledError as exc:
            cancelled = _server_cancelled(exc)
            if cancelled is None:
                raise
            raise cancelled from None
        except BROKEN_CONNECTION_ERRORS:
            raise
        except BaseException:
            broken = conn.closed
            raise
        finally:
            self.pool.release(conn, broken=broken)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiopg.Cursor]:
        """A cursor inside ``BEGIN … COMMIT``; rolled back if the block raises."""
        async with self.connection() as conn:
            cur = await conn.cursor()
            try:
                await cur.execute("BEGIN")
                try:
                    yield cur
                except BaseException:
                    if not conn.closed:
                        with contextlib.suppress(*BROKEN_CONNECTION_ERRORS):
                            await cur.execute("ROLLBACK")
                    raise
                await cur.execute("COMMIT")
            finally:
                cur.close()

    @contextlib.asynccontextmanager
    async def cursor(self) -> AsyncIterator[aiopg.Cursor]:
        """An autocommit cursor, for reads and single statements."""
        async with self.connection() as conn:
            cur = await conn.cursor()
            try:
                yield cur
            finally:
                cur.close()


class DatabaseManager:
    """Builds and owns the pools: one per service, or one shared by all (legacy)."""

    def __init__(
        self,
        metrics: AppMetrics,
        faults: FaultSwitches,
        *,
        database: type[ServiceDatabase] = ServiceDatabase,
    ) -> None:
        self._metrics = metrics
        self._faults = faults
        self._database = database
        self._pools: dict[str, ManagedPool] = {}
        self._by_service: dict[str, ManagedPool] = {}
        metrics.watch_pools(self.stats)
        faults.attach_leaker(self._leak)

    async def add_pool(self, name: str, settings: PoolSettings, services: tuple[str, ...]) -> None:
        """Open pool ``name`` and make it the one of ``services``."""
        pool = ManagedPool(name, settings, self._metrics)
        await pool.open()
        self._pools[name] = pool
        for service in services:
            self._by_service[service] = pool

    def for_service(self, service: str) -> ServiceDatabase:
        return self._database(service, self._by_service[service], self._faults)

    def pool_of(self, service: str) -> ManagedPool:
        return self._by_service[service]

    def stats(self) -> dict[str, PoolStats]:
        return {name: pool.stats() for name, pool in self._pools.items()}

    async def ping(self, service: str, deadline: float = 2.0) -> None:
        """Run ``SELECT 1`` on the service's pool within ``deadline`` seconds (readiness)."""
        db = self.for_service(service)
        async with asyncio.timeout(deadline), db.cursor() as cur:
            await cur.execute("SELECT 1")

    async def close(self) -> None:
        for pool in self._pools.values():
            await pool.close()

    async def _leak(self, service: str) -> asyncio.Task[None]:
        return await self._by_service[service].hold_all()


def rows_as_dicts(cur: Any, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Rows as dictionaries keyed by column name."""
    names = [column.name for column in cur.description]
    return [dict(zip(names, row, strict=True)) for row in rows]
