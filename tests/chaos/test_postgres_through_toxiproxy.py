"""A PostgreSQL client through a real Toxiproxy proxy: what the chaos faults rely on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import psycopg2
import pytest

from isolation_harness.chaos.errors import ComponentError
from isolation_harness.chaos.stack import postgres
from isolation_harness.chaos.toxiproxy.client import Proxy, ToxiproxyClient
from tests.plugins.pg_cluster import PostgresServer

LATENCY_MS = 200


def through(pg_server: PostgresServer, proxy: Proxy) -> str:
    user = psycopg2.extensions.parse_dsn(pg_server.dsn()).get("user", "postgres")
    dbname = psycopg2.extensions.parse_dsn(pg_server.dsn()).get("dbname", "postgres")
    return f"host=127.0.0.1 port={proxy.listen_port} user={user} dbname={dbname}"


def round_trip(conn: psycopg2.extensions.connection) -> float:
    started = time.monotonic()
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchone()
    return time.monotonic() - started


@pytest.fixture
async def pg_link(toxiproxy: ToxiproxyClient, pg_server: PostgresServer) -> AsyncIterator[Proxy]:
    proxy = await toxiproxy.create_proxy(
        "pg_under_test", listen="127.0.0.1:0", upstream=f"{pg_server.host}:{pg_server.port}"
    )
    return proxy


async def test_latency_toxic_adds_at_least_its_latency(
    toxiproxy: ToxiproxyClient, pg_server: PostgresServer, pg_link: Proxy
) -> None:
    conn = await asyncio.to_thread(postgres.connect, through(pg_server, pg_link))
    try:
        await asyncio.to_thread(round_trip, conn)
        await toxiproxy.add_toxic(pg_link.name, "latency", {"latency": LATENCY_MS}, name="slow")
        slow = await asyncio.to_thread(round_trip, conn)
        assert slow >= LATENCY_MS / 1000
        await toxiproxy.remove_toxic(pg_link.name, "slow")
        fast = await asyncio.to_thread(round_trip, conn)
        assert fast < slow
    finally:
        conn.close()


async def test_disabled_link_refuses_and_breaks_connections(
    toxiproxy: ToxiproxyClient, pg_server: PostgresServer, pg_link: Proxy
) -> None:
    dsn = through(pg_server, pg_link)
    conn = await asyncio.to_thread(postgres.connect, dsn)
    await toxiproxy.disable(pg_link.name)
    try:
        with pytest.raises(psycopg2.OperationalError):
            await asyncio.to_thread(round_trip, conn)
        with pytest.raises(ComponentError, match="refused"):
            await asyncio.to_thread(postgres.ping, dsn, 1.0)
        # The database itself is fine: only this link is cut.
        await asyncio.to_thread(postgres.ping, pg_server.dsn(), 1.0)
    finally:
        conn.close()
    await toxiproxy.enable(pg_link.name)
    await asyncio.to_thread(postgres.wait_ready, dsn, 5.0)


async def test_reset_clears_toxics_and_reenables(
    toxiproxy: ToxiproxyClient, pg_server: PostgresServer, pg_link: Proxy
) -> None:
    await toxiproxy.add_toxic(pg_link.name, "latency", {"latency": 5000}, name="stuck")
    await toxiproxy.disable(pg_link.name)
    await toxiproxy.reset()
    proxy = await toxiproxy.get_proxy(pg_link.name)
    assert proxy.enabled
    assert proxy.toxics == ()
    conn = await asyncio.to_thread(postgres.connect, through(pg_server, pg_link))
    try:
        assert await asyncio.to_thread(round_trip, conn) < 5.0
    finally:
        conn.close()
