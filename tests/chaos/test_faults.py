"""The chaos faults against the real thing: Toxiproxy, PostgreSQL, the app and its fakes.

Each fault is applied, its effect observed, reverted, and the effect must be gone with
nothing left behind (:func:`chaos.faults.residue`).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psycopg2
import pytest
from pydantic import ValidationError

from isolation_harness.chaos.errors import (
    ComponentError,
    ConfigError,
    NotSupportedError,
    ProxyNotFound,
)
from isolation_harness.chaos.faults import (
    KINDS,
    DbCrash,
    DbRestart,
    DbStop,
    Fault,
    FaultContext,
    LinkDown,
    ProviderFault,
    Recycle,
    ServiceFault,
    Toxic,
    checked_link,
    residue,
)
from isolation_harness.chaos.scenario.model import Phase
from isolation_harness.chaos.stack import postgres
from isolation_harness.chaos.stack.process import ProcessRecord
from isolation_harness.chaos.stack.state import AppState, LinkState, PostgresState, StackState
from isolation_harness.chaos.toxiproxy.client import Proxy, ToxiproxyClient
from isolation_harness.reference_app.app_keys import DATABASES
from isolation_harness.topology.ports import free_port
from tests.plugins.pg_cluster import PostgresServer
from tests.plugins.polling import until
from tests.plugins.reference_app import ADMIN_TOKEN, PaymentsFake, PricesFake, RunningApp, StartApp

LATENCY_MS = 300
BACKEND_PID = "SELECT pg_backend_pid()"
#: pools small and quick to give up, so a broken service answers 503 within seconds
POOL = {"min_size": 1, "max_size": 3, "acquire_timeout": 1.0}


# -- helpers -------------------------------------------------------------------------------


def dsn_through(server_dsn: str, port: int) -> str:
    """``server_dsn``'s user and database, reached through the proxy listening on ``port``."""
    params = psycopg2.extensions.parse_dsn(server_dsn)
    user, dbname = params.get("user", "postgres"), params.get("dbname", "postgres")
    return f"host=127.0.0.1 port={port} user={user} dbname={dbname}"


def query(conn: psycopg2.extensions.connection, sql: str = "SELECT 1") -> Any:
    with conn.cursor() as cur:
        cur.execute(sql)
        row = cur.fetchone()
        assert row is not None
        return row[0]


async def timed_query(conn: psycopg2.extensions.connection) -> float:
    started = time.monotonic()
    await asyncio.to_thread(query, conn)
    return time.monotonic() - started


@dataclass
class Stack:
    """The app with its links and fakes, and the fault context built from them."""

    ctx: FaultContext
    api: RunningApp
    links: dict[str, Proxy]
    payments: PaymentsFake
    prices_url: str
    token: str

    async def status(self, path: str) -> tuple[int, Any]:
        return await self.api.call("GET", path, token=self.token)

    def pg_dsn(self, pg_server: PostgresServer, service: str) -> str:
        return dsn_through(pg_server.dsn(), self.links[service].listen_port)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def prices_url(prices_fake: PricesFake) -> str:
    """The price-source fake the app fixtures already started (reached directly here)."""
    return prices_fake.url


def context(
    toxiproxy: ToxiproxyClient,
    links: dict[str, Proxy],
    payments: PaymentsFake,
    http: aiohttp.ClientSession,
    **overrides: Any,
) -> FaultContext:
    proxies = {f"pg_{name}": proxy.name for name, proxy in links.items()}
    proxies["payments"] = payments.link.name
    values: dict[str, Any] = {
        "toxiproxy": toxiproxy,
        "proxies": proxies,
        "variant": "isolated",
        "cluster": None,
        "app_url": "",
        "admin_token": ADMIN_TOKEN,
        "http": http,
        "fake_urls": {"payments": payments.url},
    }
    values.update(overrides)
    return FaultContext(**values)


@pytest.fixture
async def stack(
    start_app: StartApp,
    links: dict[str, Proxy],
    toxiproxy: ToxiproxyClient,
    payments_fake: PaymentsFake,
    prices_url: str,
    http: aiohttp.ClientSession,
) -> Stack:
    api = await start_app(pool=POOL, prices_url=prices_url)
    _, token = await api.new_user()
    ctx = context(
        toxiproxy,
        links,
        payments_fake,
        http,
        app_url=api.url("").rstrip("/"),
        fake_urls={"payments": payments_fake.url, "prices": prices_url},
    )
    assert await residue(ctx) == []
    return Stack(ctx, api, links, payments_fake, prices_url, token)


@dataclass
class DbStack:
    """A test's own cluster behind a proxy (as ``pg_p2p``), and the fault context."""

    ctx: FaultContext
    cluster: postgres.LocalCluster
    dsn: str


@pytest.fixture
async def db_stack(
    fresh_cluster: postgres.LocalCluster,
    toxiproxy: ToxiproxyClient,
    http: aiohttp.ClientSession,
) -> DbStack:
    proxy = await toxiproxy.create_proxy(
        f"pg_p2p_{uuid.uuid4().hex[:6]}",
        listen="127.0.0.1:0",
        upstream=f"{fresh_cluster.host}:{fresh_cluster.port}",
    )
    ctx = FaultContext(
        toxiproxy=toxiproxy,
        proxies={"pg_p2p": proxy.name},
        variant="isolated",
        cluster=fresh_cluster,
        app_url="",
        admin_token="",
        http=http,
        fake_urls={},
    )
    assert await residue(ctx) == []
    return DbStack(ctx, fresh_cluster, dsn_through(fresh_cluster.dsn(), proxy.listen_port))


async def revert_cleanly(fault: Fault, ctx: FaultContext) -> None:
    """Revert twice (the second must be harmless) and check nothing remains."""
    await fault.revert(ctx)
    await fault.revert(ctx)
    assert not await fault.active(ctx)
    assert await residue(ctx) == []


# -- Toxiproxy faults ----------------------------------------------------------------------


async def test_latency_toxic_slows_the_link_until_reverted(
    stack: Stack, pg_server: PostgresServer, toxiproxy: ToxiproxyClient
) -> None:
    conn = await asyncio.to_thread(postgres.connect, stack.pg_dsn(pg_server, "p2p"))
    try:
        await timed_query(conn)
        fault = Toxic(link="pg_p2p", toxic="latency", attributes={"latency": LATENCY_MS})
        await fault.apply(stack.ctx)
        assert await fault.active(stack.ctx)
        assert await timed_query(conn) >= LATENCY_MS / 1000
        left = await residue(stack.ctx)
        assert len(left) == 1
        assert fault.name in left[0]
        assert "pg_p2p" in left[0]

        await revert_cleanly(fault, stack.ctx)
        assert await toxiproxy.toxics(stack.links["p2p"].name) == []
        assert await asyncio.to_thread(query, conn) == 1
    finally:
        conn.close()


async def test_reset_peer_toxic_breaks_the_service_and_only_it(stack: Stack) -> None:
    assert (await stack.status("/api/p2p/offers"))[0] == 200
    fault = Toxic(link="pg_p2p", toxic="reset_peer", attributes={"timeout": 0})
    await fault.apply(stack.ctx)
    await Recycle("p2p").apply(stack.ctx)
    status, body = await stack.status("/api/p2p/offers")
    assert status == 503, body
    assert body["error"]["service"] == "p2p"
    assert (await stack.status("/api/wallet/balances"))[0] == 200

    await revert_cleanly(fault, stack.ctx)
    await until(lambda: _answers(stack, "/api/p2p/offers", 200))


async def _answers(stack: Stack, path: str, expected: int) -> bool:
    return (await stack.status(path))[0] == expected


async def test_link_down_makes_the_service_answer_503_until_reverted(stack: Stack) -> None:
    assert (await stack.status("/api/p2p/offers"))[0] == 200
    fault = LinkDown(link="pg_p2p")
    await fault.apply(stack.ctx)
    assert await fault.active(stack.ctx)
    assert (await stack.ctx.toxiproxy.get_proxy(stack.links["p2p"].name)).enabled is False
    status, body = await stack.status("/api/p2p/offers")
    assert status == 503, body
    assert body["error"]["service"] == "p2p"
    assert (await stack.status("/api/wallet/balances"))[0] == 200
    assert any("disabled" in line for line in await residue(stack.ctx))

    await revert_cleanly(fault, stack.ctx)
    await until(lambda: _answers(stack, "/api/p2p/offers", 200))


async def test_legacy_refuses_faults_on_a_services_own_database_link(
    stack: Stack, toxiproxy: ToxiproxyClient
) -> None:
    """In the legacy design pg_<service> carries nothing, and moving its fault to the shared
    link would cut every service: refused, with nothing touched."""
    legacy = replace(stack.ctx, variant="legacy")
    shared, p2p = stack.links["shared"].name, stack.links["p2p"].name
    for fault in (
        LinkDown(link="pg_p2p"),
        Toxic(link="pg_swap", toxic="latency", attributes={"latency": LATENCY_MS}),
    ):
        with pytest.raises(ConfigError) as refused:
            await fault.apply(legacy)
        assert "carries no traffic in the legacy design" in refused.value.problem
        assert "pg_shared" in refused.value.problem
        assert "type: service" in refused.value.fix
        await revert_cleanly(fault, legacy)
    assert (await toxiproxy.get_proxy(shared)).enabled
    assert (await toxiproxy.get_proxy(p2p)).enabled
    assert await toxiproxy.toxics(shared) == []

    # The shared link itself is the legacy design's database path: every service's target.
    down = LinkDown(link="pg_shared")
    assert down.target_service is None
    await down.apply(legacy)
    assert (await toxiproxy.get_proxy(shared)).enabled is False
    await revert_cleanly(down, legacy)


def test_checked_link_refuses_only_per_service_database_links_in_legacy() -> None:
    for link in ("pg_p2p", "pg_deposits", "pg_background"):
        with pytest.raises(ConfigError):
            checked_link(link, "legacy")
        assert checked_link(link, "isolated") == link
    for link in ("pg_shared", "payments", "prices"):
        assert checked_link(link, "legacy") == link


async def test_payments_link_down_fails_deposits(stack: Stack) -> None:
    fault = LinkDown(link="payments")
    await fault.apply(stack.ctx)
    status, body = await create_deposit(stack)
    assert status == 503, body
    assert body["error"]["service"] == "deposits"
    await revert_cleanly(fault, stack.ctx)
    assert (await create_deposit(stack))[0] == 201


async def create_deposit(stack: Stack) -> tuple[int, Any]:
    return await stack.api.call(
        "POST", "/api/nowpayments/create-deposit", token=stack.token, key=secrets.token_hex(8),
        json={"currency": "BTC", "amount": "0.01"},
    )  # fmt: skip


# -- the app's fault API -------------------------------------------------------------------


async def test_service_fault_raise_breaks_one_service(stack: Stack) -> None:
    fault = ServiceFault(service="p2p", mode="raise")
    await fault.apply(stack.ctx)
    assert await fault.active(stack.ctx)
    status, body = await stack.status("/api/p2p/offers")
    assert status == 503, body
    assert body["error"]["service"] == "p2p"
    assert body["error"]["code"] == "service_broken"
    assert (await stack.status("/api/wallet/balances"))[0] == 200
    assert await residue(stack.ctx) == ["service p2p: fault raise set in the app"]

    await revert_cleanly(fault, stack.ctx)
    assert (await stack.status("/api/p2p/offers"))[0] == 200


async def test_service_fault_slow_adds_at_least_its_delay(stack: Stack) -> None:
    fault = ServiceFault(service="p2p", mode="slow", slow_ms=LATENCY_MS)
    await fault.apply(stack.ctx)
    assert await fault.active(stack.ctx)
    started = time.monotonic()
    assert (await stack.status("/api/p2p/offers"))[0] == 200
    assert time.monotonic() - started >= LATENCY_MS / 1000
    await revert_cleanly(fault, stack.ctx)


async def test_service_fault_leak_exhausts_the_service_pool(stack: Stack) -> None:
    fault = ServiceFault(service="p2p", mode="leak")
    await fault.apply(stack.ctx)
    status, body = await stack.status("/api/p2p/offers")
    assert status == 503, body
    assert body["error"]["service"] == "p2p"
    assert (await stack.status("/api/wallet/balances"))[0] == 200
    await revert_cleanly(fault, stack.ctx)
    await until(lambda: _answers(stack, "/api/p2p/offers", 200))


async def test_recycle_closes_the_idle_connections(stack: Stack) -> None:
    pool = stack.api.app[DATABASES].pool_of("p2p")
    assert (await stack.status("/api/p2p/offers"))[0] == 200
    assert pool.stats().free >= 1
    fault = Recycle("p2p")
    await fault.apply(stack.ctx)
    assert pool.stats().free == 0
    assert not await fault.active(stack.ctx)
    await revert_cleanly(fault, stack.ctx)
    assert (await stack.status("/api/p2p/offers"))[0] == 200


async def test_wrong_admin_token_is_a_component_error(stack: Stack) -> None:
    ctx = replace(stack.ctx, admin_token="wrong-" + "x" * 20)
    fault = ServiceFault(service="p2p", mode="raise")
    with pytest.raises(ComponentError, match="401"):
        await fault.apply(ctx)
    await fault.revert(ctx)  # refused: nothing to mend, nothing called
    assert await residue(stack.ctx) == []


# -- the provider fakes --------------------------------------------------------------------


async def fake_get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as answer:
        return answer.status, await answer.text()


async def test_payments_error_mode_fails_the_fake_and_deposits(stack: Stack) -> None:
    fault = ProviderFault(target="payments", mode="error", status=502)
    await fault.apply(stack.ctx)
    assert await fault.active(stack.ctx)
    assert (await fake_get(stack.ctx.http, f"{stack.payments.url}/v1/status"))[0] == 502
    status, body = await create_deposit(stack)
    assert status == 503, body
    assert body["error"]["code"] == "provider_unavailable"
    assert await residue(stack.ctx) == ["payments fake: mode error"]

    await revert_cleanly(fault, stack.ctx)
    assert (await fake_get(stack.ctx.http, f"{stack.payments.url}/v1/status"))[0] == 200
    assert (await create_deposit(stack))[0] == 201


async def test_prices_stale_and_slow_modes(stack: Stack) -> None:
    price_url = f"{stack.prices_url}/v1/prices/BTC-USDT"
    stale = ProviderFault(target="prices", mode="stale", stale_seconds=7200)
    await stale.apply(stack.ctx)
    async with stack.ctx.http.get(price_url) as answer:
        as_of = datetime.fromisoformat((await answer.json())["as_of"])
    assert (datetime.now(UTC) - as_of).total_seconds() >= 7200
    await revert_cleanly(stale, stack.ctx)

    slow = ProviderFault(target="prices", mode="slow", delay_ms=LATENCY_MS)
    await slow.apply(stack.ctx)
    started = time.monotonic()
    assert (await fake_get(stack.ctx.http, price_url))[0] == 200
    assert time.monotonic() - started >= LATENCY_MS / 1000
    await revert_cleanly(slow, stack.ctx)


async def test_prices_malformed_mode(stack: Stack) -> None:
    fault = ProviderFault(target="prices", mode="malformed")
    await fault.apply(stack.ctx)
    status, text = await fake_get(stack.ctx.http, f"{stack.prices_url}/v1/prices/BTC-USDT")
    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    await revert_cleanly(fault, stack.ctx)


async def test_unreachable_fake_is_a_component_error(stack: Stack) -> None:
    ctx = replace(stack.ctx, fake_urls={"payments": f"http://127.0.0.1:{free_port()}"})
    fault = ProviderFault(target="payments", mode="error")
    with pytest.raises(ComponentError, match="could not connect"):
        await fault.apply(ctx)
    await fault.revert(ctx)
    left = await residue(ctx)
    assert len(left) == 1
    assert left[0].startswith("payments fake: cannot check its mode")


# -- the database --------------------------------------------------------------------------


def postmaster_pid(cluster: postgres.LocalCluster) -> int:
    record = cluster.postmaster()
    assert record is not None
    return record.pid


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_db_restart_gives_a_new_postmaster(db_stack: DbStack, mode: str) -> None:
    before = postmaster_pid(db_stack.cluster)
    conn = await asyncio.to_thread(postgres.connect, db_stack.dsn)
    try:
        fault = DbRestart(mode=mode)  # type: ignore[arg-type]
        await fault.apply(db_stack.ctx)
        assert postmaster_pid(db_stack.cluster) != before
        with pytest.raises(psycopg2.OperationalError):
            await asyncio.to_thread(query, conn)
    finally:
        conn.close()
    await asyncio.to_thread(postgres.ping, db_stack.dsn, 2.0)
    await revert_cleanly(fault, db_stack.ctx)


async def test_db_crash_kills_the_backends_and_starts_again(db_stack: DbStack) -> None:
    before = postmaster_pid(db_stack.cluster)
    conn = await asyncio.to_thread(postgres.connect, db_stack.dsn)
    try:
        backend = ProcessRecord.of(int(await asyncio.to_thread(query, conn, BACKEND_PID)))
        fault = DbCrash()
        await fault.apply(db_stack.ctx)
        assert postmaster_pid(db_stack.cluster) != before
        assert not backend.alive()
        with pytest.raises(psycopg2.OperationalError):
            await asyncio.to_thread(query, conn)
    finally:
        conn.close()
    await asyncio.to_thread(postgres.ping, db_stack.dsn, 2.0)
    await revert_cleanly(fault, db_stack.ctx)


async def test_db_stopped_refuses_connections_until_reverted(db_stack: DbStack) -> None:
    fault = DbStop()
    await fault.apply(db_stack.ctx)
    assert await fault.active(db_stack.ctx)
    with pytest.raises(ComponentError):
        await asyncio.to_thread(postgres.ping, db_stack.dsn, 1.0)
    assert await residue(db_stack.ctx) == ["PostgreSQL: the cluster is not running"]

    await revert_cleanly(fault, db_stack.ctx)
    await asyncio.to_thread(postgres.ping, db_stack.dsn, 2.0)


async def test_revert_after_a_cancelled_db_apply_restarts_the_cluster(db_stack: DbStack) -> None:
    fault = DbStop()
    applying = asyncio.ensure_future(fault.apply(db_stack.ctx))
    await under_way(fault)
    applying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await applying
    # The stop goes on in its thread: revert waits for it, then starts the cluster.
    await revert_cleanly(fault, db_stack.ctx)
    await asyncio.to_thread(postgres.ping, db_stack.dsn, 2.0)


@pytest.mark.parametrize("fault", [DbRestart(), DbCrash(), DbStop()], ids=repr)
async def test_db_faults_need_a_cluster_the_harness_controls(
    fault: Fault, toxiproxy: ToxiproxyClient, http: aiohttp.ClientSession
) -> None:
    ctx = FaultContext(toxiproxy, {}, "isolated", None, "", "", http, {})
    with pytest.raises(NotSupportedError):
        await fault.apply(ctx)
    await revert_cleanly(fault, ctx)


# -- revert is always safe -----------------------------------------------------------------


def every_fault() -> list[Fault]:
    return [
        Toxic(link="pg_p2p", toxic="latency", attributes={"latency": 100}),
        LinkDown(link="pg_wallet"),
        LinkDown(link="payments"),
        ServiceFault(service="swap", mode="hang"),
        ServiceFault(service="p2p", mode="slow", slow_ms=100),
        ProviderFault(target="payments", mode="malformed"),
        ProviderFault(target="prices", mode="error"),
        Recycle("deposits"),
        DbRestart(),
        DbCrash(),
        DbStop(),
    ]


@pytest.mark.parametrize("fault", every_fault(), ids=lambda f: f.describe())
async def test_revert_without_apply_does_nothing(stack: Stack, fault: Fault) -> None:
    await revert_cleanly(fault, stack.ctx)


@pytest.mark.parametrize(
    "fault", [f for f in every_fault() if f.target_service is not None], ids=lambda f: f.describe()
)
async def test_apply_then_revert_twice_leaves_nothing(stack: Stack, fault: Fault) -> None:
    await fault.apply(stack.ctx)
    if not isinstance(fault, Recycle):
        assert await fault.active(stack.ctx)
        assert await residue(stack.ctx) != []
    await revert_cleanly(fault, stack.ctx)


async def under_way(fault: Any) -> None:
    """Let the loop run until ``fault.apply()`` has its call in flight (and not longer)."""
    for _ in range(1000):
        if fault._work is not None:
            return
        await asyncio.sleep(0)  # a turn of the loop, not a wait
    raise AssertionError("apply() never started its call")


@pytest.mark.parametrize(
    "fault",
    [
        Toxic(link="pg_p2p", toxic="latency", attributes={"latency": 100}),
        LinkDown(link="pg_p2p"),
        ServiceFault(service="p2p", mode="raise"),
        ProviderFault(target="prices", mode="error"),
    ],
    ids=lambda f: f.describe(),
)
async def test_revert_after_a_cancelled_apply(stack: Stack, fault: Fault) -> None:
    applying = asyncio.ensure_future(fault.apply(stack.ctx))
    await under_way(fault)
    applying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await applying
    # The call in flight may still land: revert waits for it before mending.
    await revert_cleanly(fault, stack.ctx)


async def test_revert_during_apply_waits_for_it(stack: Stack) -> None:
    fault = Toxic(link="pg_p2p", toxic="latency", attributes={"latency": 100})
    applying = asyncio.ensure_future(fault.apply(stack.ctx))
    await under_way(fault)
    await revert_cleanly(fault, stack.ctx)
    await applying
    assert not await fault.active(stack.ctx)


async def test_revert_after_a_refused_apply(stack: Stack) -> None:
    missing = replace(stack.ctx, proxies={"pg_p2p": "no_such_proxy"})
    toxic = Toxic(link="pg_p2p", toxic="latency", attributes={"latency": 100})
    with pytest.raises(ProxyNotFound):
        await toxic.apply(missing)
    await toxic.revert(missing)

    down = LinkDown(link="pg_swap")
    with pytest.raises(ConfigError, match="no proxy for link 'pg_swap'"):
        await down.apply(missing)
    await down.revert(missing)
    assert await residue(stack.ctx) == []


# -- residue -------------------------------------------------------------------------------


async def test_residue_reports_every_kind_of_leftover(
    stack: Stack, toxiproxy: ToxiproxyClient
) -> None:
    wallet, payments = stack.links["wallet"].name, stack.payments.link.name
    await toxiproxy.add_toxic(wallet, "latency", {"latency": 10}, name="forgotten")
    await toxiproxy.disable(payments)
    await stack.api.call("PUT", "/api/_faults/swap", token=ADMIN_TOKEN, json={"mode": "raise"})
    async with stack.ctx.http.post(
        f"{stack.prices_url}/_control/mode", json={"mode": "error"}
    ) as answer:
        assert answer.status == 200

    assert sorted(await residue(stack.ctx)) == sorted(
        [
            f"link pg_wallet: toxic forgotten (latency, downstream) on proxy {wallet}",
            f"link payments: proxy {payments} is disabled",
            "service swap: fault raise set in the app",
            "prices fake: mode error",
        ]
    )

    await toxiproxy.remove_toxic(wallet, "forgotten")
    await toxiproxy.enable(payments)
    await stack.api.call("DELETE", "/api/_faults", token=ADMIN_TOKEN)
    async with stack.ctx.http.post(
        f"{stack.prices_url}/_control/mode", json={"mode": "normal"}
    ) as answer:
        assert answer.status == 200
    assert await residue(stack.ctx) == []


async def test_residue_reports_missing_proxies_and_unreachable_app(stack: Stack) -> None:
    ctx = replace(
        stack.ctx,
        proxies={"pg_p2p": "no_such_proxy"},
        app_url=f"http://127.0.0.1:{free_port()}",
        fake_urls={},
    )
    left = await residue(ctx)
    assert left[0] == "link pg_p2p: proxy no_such_proxy does not exist"
    assert left[1].startswith("app: cannot check the service faults")
    assert len(left) == 2


# -- definitions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: Toxic(link="pg_nowhere", toxic="latency", attributes={"latency": 1}),
        lambda: Toxic(link="pg_p2p", toxic="jitterbug", attributes={}),
        lambda: Toxic(link="pg_p2p", toxic="latency", attributes={"rate": 1}),
        lambda: Toxic(link="pg_p2p", toxic="latency", attributes={"latency": 1.5}),
        lambda: Toxic(link="pg_p2p", toxic="latency", attributes={"latency": 1}, stream="sideways"),
        lambda: Toxic(link="pg_p2p", toxic="latency", attributes={"latency": 1}, toxicity=1.5),
        lambda: LinkDown(link="pg_nowhere"),
        lambda: DbRestart(mode="smart"),  # type: ignore[arg-type]
        lambda: ServiceFault(service="p2p", mode="explode"),
        lambda: ServiceFault(service="p2p", mode="none"),
        lambda: ServiceFault(service="p2p", mode="slow"),
        lambda: ServiceFault(service="p2p/x", mode="raise"),
        lambda: ProviderFault(target="bank", mode="error"),
        lambda: ProviderFault(target="payments", mode="stale"),
        lambda: ProviderFault(target="payments", mode="error", status=200),
        lambda: ProviderFault(target="prices", mode="slow", delay_ms=-1),
        # the bounds of a scenario file, for a fault made in Python too
        lambda: ProviderFault(target="prices", mode="slow", delay_ms=0),
        lambda: ProviderFault(target="prices", mode="slow"),
        lambda: ServiceFault(service="p2p", mode="slow", slow_ms=0),
        lambda: ServiceFault(service="p2p", mode="raise", slow_ms=100),
        lambda: ServiceFault(service="nosuchservice", mode="raise"),
    ],
)
def test_invalid_faults_are_refused_when_defined(make: Callable[[], Fault]) -> None:
    with pytest.raises(ValidationError):
        make()


def test_a_scenario_entry_is_the_fault_itself() -> None:
    """One definition per kind: the entry a file names is the object the runner applies,
    validated by the same bounds."""
    phase = Phase.model_validate(
        {"phase": "cut", "duration": "5s", "faults": [
            {"type": "service", "service": "p2p", "mode": "slow", "slow_ms": 200},
            {"type": "toxic", "link": "pg_swap", "toxic": "latency",
             "attributes": {"latency": 50}},
        ]}
    )  # fmt: skip
    assert phase.faults == (
        ServiceFault(service="p2p", mode="slow", slow_ms=200),
        Toxic(link="pg_swap", toxic="latency", attributes={"latency": 50}),
    )
    assert [type(f) for f in phase.faults] == [KINDS["service"], KINDS["toxic"]]


@pytest.mark.parametrize(
    ("fault", "target"),
    [
        (Toxic(link="pg_p2p", toxic="latency", attributes={"latency": 1}), "p2p"),
        (LinkDown(link="pg_deposits"), "deposits"),
        (LinkDown(link="pg_shared"), None),
        (LinkDown(link="payments"), "deposits"),
        (Toxic(link="prices", toxic="timeout", attributes={"timeout": 0}), "swap"),
        (ServiceFault(service="wallet", mode="raise"), "wallet"),
        (ProviderFault(target="payments", mode="error"), "deposits"),
        (ProviderFault(target="prices", mode="stale"), "swap"),
        (Recycle("p2p"), "p2p"),
        (DbRestart(mode="immediate"), None),
        (DbCrash(), None),
        (DbStop(), None),
    ],
    ids=lambda f: f.describe() if not isinstance(f, str | None) else str(f),
)
def test_target_service_and_description(fault: Fault, target: str | None) -> None:
    assert fault.target_service == target
    line = fault.describe()
    assert line
    assert "\n" not in line


def test_toxics_get_unique_names() -> None:
    first = Toxic(link="pg_p2p", toxic="latency", attributes={})
    assert first.name != Toxic(link="pg_p2p", toxic="latency", attributes={}).name
    assert first.name != first.fresh().name


async def test_context_from_stack_state(
    toxiproxy: ToxiproxyClient, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    state = StackState(
        postgres=PostgresState(
            kind="local", host="127.0.0.1", port=5999, dsn="host=127.0.0.1 port=5999",
            data_dir=tmp_path / "data", bin_dir=tmp_path / "bin",
        ),
        links={
            "pg_p2p": LinkState(listen="127.0.0.1:7001", upstream="127.0.0.1:5999"),
            "payments": LinkState(listen="127.0.0.1:7002", upstream="127.0.0.1:7100"),
        },
        fake_ports={"payments": 7100, "prices": 7101},
        app=AppState(
            url="http://127.0.0.1:8080/", port=8080, variant="legacy", workers=2,
            admin_token=ADMIN_TOKEN, settings_file=tmp_path / "settings.json",
        ),
    )  # fmt: skip
    ctx = FaultContext.from_stack(state, toxiproxy, http)
    assert ctx.proxies == {"pg_p2p": "pg_p2p", "payments": "payments"}
    assert ctx.variant == "legacy"
    assert ctx.cluster is not None
    assert ctx.cluster.port == 5999
    assert ctx.cluster.data_dir == tmp_path / "data"
    assert ctx.app_url == "http://127.0.0.1:8080"
    assert ctx.admin_token == ADMIN_TOKEN
    assert ctx.fake_urls == {"payments": "http://127.0.0.1:7100", "prices": "http://127.0.0.1:7101"}

    external = StackState(
        postgres=PostgresState(kind="external", host="db", port=5432, dsn="host=db")
    )
    bare = FaultContext.from_stack(external, toxiproxy, http)
    assert bare.cluster is None
    assert bare.app_url == ""
    assert bare.variant == "isolated"
    assert bare.proxies == {}
    with pytest.raises(NotSupportedError):
        await DbStop().apply(bare)
    with pytest.raises(ComponentError, match="no app"):
        await ServiceFault(service="p2p", mode="raise").apply(bare)
