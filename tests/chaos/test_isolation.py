"""Isolation through real Toxiproxy: one service's database trouble stays that service's.

The same faults on the legacy design (one shared pool, no acquire timeout, no error
boundaries) must hurt deposits: the tests assert that legacy is *not* isolated, which is
what proves the harness can tell the two apart.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import pytest

from isolation_harness.chaos.stack import postgres
from isolation_harness.chaos.toxiproxy.client import Proxy, ToxiproxyClient
from isolation_harness.reference_app.settings import SERVICES
from tests.plugins.pg_cluster import PostgresServer
from tests.plugins.polling import until
from tests.plugins.reference_app import ADMIN_TOKEN, RunningApp, StartApp

ACQUIRE_TIMEOUT = 1.0
POOL = {"min_size": 2, "max_size": 5, "acquire_timeout": ACQUIRE_TIMEOUT}


async def create_deposit(api: RunningApp, token: str) -> tuple[int, Any]:
    return await api.call(
        "POST", "/api/nowpayments/create-deposit", token=token, key=secrets.token_hex(8),
        json={"currency": "BTC", "amount": "0.01"},
    )  # fmt: skip


async def probe(api: RunningApp, services: Sequence[str]) -> dict[str, str | None]:
    """Each service's readiness, probed together: None if ready, else the error it gave."""
    answers = await asyncio.gather(*(api.call("GET", f"/health/ready/{s}") for s in services))
    return {
        service: None if status == 200 else str(body["services"][service]["error"])
        for service, (status, body) in zip(services, answers, strict=True)
    }


def waited(service: str, error: str) -> bool:
    """A probe's error says it ran out of time (the probe's or the pool's), nothing else."""
    return error == "pool busy" or error.startswith("no answer within")


async def all_ready(api: RunningApp) -> bool:
    return all(error is None for error in (await probe(api, SERVICES)).values())


async def timed(coro: Any) -> tuple[float, Any]:
    started = time.monotonic()
    result = await coro
    return time.monotonic() - started, result


async def test_deposits_survive_p2p_link_down(
    start_app: StartApp, links: dict[str, Proxy], toxiproxy: ToxiproxyClient
) -> None:
    api = await start_app(pool=POOL)
    _, token = await api.new_user()
    assert (await api.call("GET", "/api/p2p/offers", token=token))[0] == 200
    await toxiproxy.disable(links["p2p"].name)

    for _ in range(100):
        status, body = await create_deposit(api, token)
        assert status == 201, body
    results = await asyncio.gather(*(create_deposit(api, token) for _ in range(50)))
    assert [status for status, _ in results] == [201] * 50

    elapsed, (status, body) = await timed(api.call("GET", "/api/p2p/offers", token=token))
    assert status == 503, body
    assert body["error"]["service"] == "p2p"
    assert body["error"]["code"] in {"database_unavailable", "pool_timeout"}
    assert body["error"]["request_id"]
    assert elapsed <= ACQUIRE_TIMEOUT + 1.0

    await toxiproxy.enable(links["p2p"].name)
    assert (await api.call("GET", "/api/p2p/offers", token=token))[0] == 200


async def test_legacy_deposits_fail_when_the_shared_link_is_down(
    start_app: StartApp, links: dict[str, Proxy], toxiproxy: ToxiproxyClient
) -> None:
    """In the legacy design p2p's database traffic shares deposits' one link and pool."""
    api = await start_app("legacy", pool=POOL)
    _, token = await api.new_user()
    assert (await create_deposit(api, token))[0] == 201
    await toxiproxy.disable(links["shared"].name)
    try:
        async with asyncio.timeout(5):
            status, body = await create_deposit(api, token)
    except TimeoutError:
        return  # hangs: not isolated
    assert status >= 500, body
    # …and not as a structured error naming a service: there is no boundary.
    assert not (isinstance(body, dict) and "error" in body)


async def hold_p2p_requests(api: RunningApp, token: str, count: int) -> list[asyncio.Task[Any]]:
    """Start ``count`` p2p requests that hang (fault API), each holding a connection."""
    status, body = await api.call(
        "PUT", "/api/_faults/p2p", token=ADMIN_TOKEN, json={"mode": "hang"}
    )
    assert status == 200, body
    tasks = [
        asyncio.create_task(api.call("GET", "/api/p2p/offers", token=token)) for _ in range(count)
    ]
    await asyncio.sleep(0.3)  # let them take their connections
    return tasks


async def release(api: RunningApp, tasks: list[asyncio.Task[Any]]) -> None:
    await api.call("DELETE", "/api/_faults", token=ADMIN_TOKEN)
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_hung_p2p_does_not_starve_deposits(start_app: StartApp) -> None:
    api = await start_app(pool=POOL, service_timeout=3.0)
    _, token = await api.new_user()
    tasks = await hold_p2p_requests(api, token, 2 * POOL["max_size"])
    try:
        elapsed, (status, body) = await timed(create_deposit(api, token))
        assert status == 201, body
        assert elapsed < ACQUIRE_TIMEOUT
        # p2p's own limits end its hung requests: its pool timeout, then its time limit.
        async with asyncio.timeout(3.0 + 5):
            answers = await asyncio.gather(*tasks)
    finally:
        await release(api, tasks)
    # The hung requests ended as p2p's own 503s (its time limit or its pool), not as hangs.
    assert all(s == 503 and b["error"]["service"] == "p2p" for s, b in answers), answers


async def test_legacy_hung_p2p_starves_deposits(start_app: StartApp) -> None:
    api = await start_app("legacy", pool=POOL)
    _, token = await api.new_user()
    tasks = await hold_p2p_requests(api, token, 2 * POOL["max_size"])
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(3):
                await create_deposit(api, token)
    finally:
        await release(api, tasks)


async def test_every_service_serves_again_soon_after_an_immediate_restart(
    start_app: StartApp, pg_server: PostgresServer
) -> None:
    if not isinstance(pg_server, postgres.LocalCluster):
        pytest.skip("restarting PostgreSQL needs a cluster the harness controls")
    api = await start_app(pool=POOL)
    _, token = await api.new_user({"BTC": "1"})
    # Fill every pool with idle connections, which the restart will kill. A probe has 1 s,
    # and the first one of a pool opens its connections: on a busy machine that can take
    # longer, which is not what this test is about.
    for _ in range(3):
        await until(lambda: all_ready(api))

    samples: list[tuple[float, float, int]] = []  # (started, duration, status)
    stop = asyncio.Event()

    async def traffic() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                status, _ = await api.call("GET", "/api/wallet/balances", token=token)
            except aiohttp.ClientError:
                status = 0
            samples.append((started, time.monotonic() - started, status))
            await asyncio.sleep(0.01)

    load = asyncio.create_task(traffic())
    await asyncio.sleep(0.2)
    await asyncio.to_thread(pg_server.restart, "immediate")
    back = time.monotonic()
    recovered: dict[str, float] = {}
    failures: list[tuple[str, str]] = []
    while len(recovered) < len(SERVICES) and time.monotonic() - back < 10:
        found = await probe(api, [s for s in SERVICES if s not in recovered])
        for service, error in found.items():
            if error is None:
                recovered[service] = time.monotonic() - back
            else:
                failures.append((service, error))
        await asyncio.sleep(0.01)
    status, body = await create_deposit(api, token)
    await asyncio.sleep(0.3)
    stop.set()
    await load

    assert status == 201, body
    assert set(recovered) == set(SERVICES), recovered
    # Every idle connection died with the restart (aiopg's reader marks most of them
    # closed, the pool's liveness check the rest). A pool that handed one out would fail
    # its service's first probe with the dead connection's error; only waiting (for a new
    # connection, on a busy machine) may delay the answer.
    assert all(waited(service, error) for service, error in failures), failures
    # Soon: a pool that kept its dead connections, or waited for TCP to notice, takes far
    # longer (or never recovers); these bounds leave room for a busy machine.
    assert max(recovered.values()) <= 3.0, recovered
    assert max(duration for _, duration, _ in samples) <= ACQUIRE_TIMEOUT + 1.0
    after = [status for started, _, status in samples if started >= back]
    assert after, "no request ran after the database was back"
    assert all(status == 200 for status in after), after
