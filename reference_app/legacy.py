"""The old design, one setting away (``architecture: legacy``), kept so that the harness can
be shown to catch it.

It reproduces the source document's root causes by what it does, not by decree. Nothing in
it knows about faults or about the other features:

1. **One global service object.** One :class:`~reference_app.db.DatabaseManager` holds the
   one pool, and every feature takes its connections from it (``pg_shared``, one role).
2. **One shared pool.** A connection held by P2P is a connection deposits cannot have: a
   feature that hangs, runs slowly, holds row locks or leaks holds the pool's connections.
3. **No acquire timeout.** When the pool is empty, a caller waits until one comes back:
   for ever, if none does.
4. **No error boundary.** Use cases run with no time limit and errors escape as they are
   (aiohttp's bare 500). The old data access gave its connection back on the way out of a
   success or of a refusal it knew (an :class:`~reference_app.errors.AppError`), not on an
   error it did not expect: that connection stays taken, in use for ever.

So an error in one feature reaches the others through the shared state: a feature that
keeps failing leaks one connection of the shared pool per failure, and once they are gone
every feature waits (3) until its client gives up.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiopg

from isolation_harness.reference_app.db import ServiceDatabase
from isolation_harness.reference_app.errors import AppError


class SharedPoolDatabase(ServiceDatabase):
    """One feature's use of the shared pool, as the old code did it (root cause 4)."""

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[aiopg.Connection]:
        conn = await self.pool.acquire()
        try:
            await self._faults.on_connection(self.service)
            yield conn
        except AppError:
            self.pool.release(conn, broken=conn.closed)
            raise
        # Nothing else gives it back: on an unexpected error the connection stays taken.
        self.pool.release(conn, broken=conn.closed)
