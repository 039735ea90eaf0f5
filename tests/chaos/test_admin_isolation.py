"""The admin dashboard's database trouble stays the dashboard's, through real Toxiproxy.

With ``pg_admin`` slowed by 2 s per round trip the dashboard is slow, and deposits, wallet
and p2p answer as fast as before; the dashboard reads through ``pg_admin`` only, so the other
links down leave it working, and its own link down is its own 503.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time
from collections.abc import Awaitable
from typing import Any

from isolation_harness.chaos.toxiproxy.client import Proxy, ToxiproxyClient
from isolation_harness.reference_app.app_keys import DATABASES
from isolation_harness.reference_app.settings import SERVICES
from tests.plugins.polling import until
from tests.plugins.reference_app import ADMIN_TOKEN, RunningApp, StartApp

DASHBOARD = "/api/admin/dashboard"
LATENCY_MS = 2000
#: generous: opening a connection through the slowed link takes a few round trips
SLOW_POOL = {"min_size": 1, "max_size": 5, "acquire_timeout": 20.0}
#: what the others may take, at worst, while the admin is slow: far below one round trip
#: of the slowed link, so any wait on it would show, and far above a noisy machine's jitter
WORST_OTHER = 1.0
ROUNDS = 15


async def timed(call: Awaitable[tuple[int, Any]]) -> tuple[float, int, Any]:
    started = time.monotonic()
    status, body = await call
    return time.monotonic() - started, status, body


async def others_batch(api: RunningApp, token: str) -> dict[str, list[float]]:
    """Durations of ``ROUNDS`` requests to each of deposits, wallet and p2p (all must pass)."""
    paths = {
        "deposits": "/api/nowpayments/deposits",
        "wallet": "/api/wallet/balances",
        "p2p": "/api/p2p/offers",
    }
    durations: dict[str, list[float]] = {service: [] for service in paths}
    for _ in range(ROUNDS):
        for service, path in paths.items():
            elapsed, status, body = await timed(api.call("GET", path, token=token))
            assert status == 200, (service, body)
            durations[service].append(elapsed)
        elapsed, status, body = await timed(
            api.call(
                "POST", "/api/nowpayments/create-deposit", token=token, key=secrets.token_hex(8),
                json={"currency": "BTC", "amount": "0.01"},
            )
        )  # fmt: skip
        assert status == 201, body
        durations["deposits"].append(elapsed)
    return durations


async def test_a_slow_admin_database_slows_no_one_else(
    start_app: StartApp, links: dict[str, Proxy], toxiproxy: ToxiproxyClient
) -> None:
    api = await start_app(pool=SLOW_POOL, service_timeout=60.0)
    _, token = await api.new_user({"BTC": "1"})
    assert (await api.call("GET", DASHBOARD, token=ADMIN_TOKEN))[0] == 200
    await others_batch(api, token)  # warm every pool
    before = await others_batch(api, token)

    await toxiproxy.add_toxic(links["admin"].name, "latency", {"latency": LATENCY_MS})
    status, body = await api.call("POST", "/api/_faults/admin/recycle", token=ADMIN_TOKEN)
    assert status == 200, body
    admin_pool = api.app[DATABASES].pool_of("admin")
    dashboards = [
        asyncio.create_task(timed(api.call("GET", DASHBOARD, token=ADMIN_TOKEN))) for _ in range(3)
    ]
    await until(lambda: admin_pool.stats().in_use >= 1)
    during = await others_batch(api, token)
    overlapped = not any(task.done() for task in dashboards)
    answers = await asyncio.gather(*dashboards)

    assert overlapped, "the dashboards ended before the other services' batch did"
    for elapsed, status, body in answers:
        assert status == 200, body
        assert elapsed >= LATENCY_MS / 1000, elapsed
    for service, durations in during.items():
        p50_before = statistics.median(before[service])
        p50_during = statistics.median(durations)
        assert max(durations) < WORST_OTHER, (service, max(durations), durations)
        assert p50_during <= max(3 * p50_before, p50_before + 0.1), (
            service, p50_before, p50_during,
        )  # fmt: skip

    await toxiproxy.remove_toxic(links["admin"].name, "latency_downstream")
    await api.call("POST", "/api/_faults/admin/recycle", token=ADMIN_TOKEN)
    elapsed, status, _ = await timed(api.call("GET", DASHBOARD, token=ADMIN_TOKEN))
    assert status == 200
    assert elapsed < LATENCY_MS / 1000


async def test_the_dashboard_reads_through_its_own_link_only(
    start_app: StartApp, links: dict[str, Proxy], toxiproxy: ToxiproxyClient
) -> None:
    api = await start_app(pool={"min_size": 1, "max_size": 5, "acquire_timeout": 1.0})
    _, token = await api.new_user()
    others = [s for s in SERVICES if s != "admin"]
    for service in others:
        await toxiproxy.disable(links[service].name)
    for service in others:
        await api.call("POST", f"/api/_faults/{service}/recycle", token=ADMIN_TOKEN)
    status, body = await api.call("GET", "/api/wallet/balances", token=token)
    assert (status, body["error"]["service"]) == (503, "wallet"), body

    status, body = await api.call("GET", DASHBOARD, token=ADMIN_TOKEN)
    assert status == 200, body
    assert set(body["pools"]) == set(SERVICES)

    for service in others:
        await toxiproxy.enable(links[service].name)
    await toxiproxy.disable(links["admin"].name)
    await api.call("POST", "/api/_faults/admin/recycle", token=ADMIN_TOKEN)
    elapsed, status, body = await timed(api.call("GET", DASHBOARD, token=ADMIN_TOKEN))
    assert status == 503, body
    assert body["error"]["service"] == "admin"
    assert body["error"]["code"] in {"database_unavailable", "pool_timeout"}
    assert elapsed < 1.0 + 1.0
    assert (await api.call("GET", "/api/wallet/balances", token=token))[0] == 200

    await toxiproxy.enable(links["admin"].name)
    assert (await api.call("GET", DASHBOARD, token=ADMIN_TOKEN))[0] == 200
