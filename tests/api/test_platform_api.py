"""Health, metrics, the OpenAPI document, the fault API and error shapes, over HTTP."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

import pytest

from isolation_harness.chaos.toxiproxy.client import Proxy, ToxiproxyClient
from isolation_harness.reference_app.app_keys import DATABASES, ROUTES
from isolation_harness.reference_app.boundary import FAILURE_KINDS
from isolation_harness.reference_app.loop_lag import INTERVAL
from isolation_harness.reference_app.settings import SERVICES
from tests.plugins.api_helpers import metric
from tests.plugins.polling import until
from tests.plugins.reference_app import ADMIN_TOKEN, RunningApp, StartApp


async def ready(api: RunningApp) -> tuple[int, Any] | None:
    """The readiness answer, if it is 200."""
    status, body = await api.call("GET", "/health/ready")
    return (status, body) if status == 200 else None


async def test_liveness_and_readiness(
    api: RunningApp, links: dict[str, Proxy], toxiproxy: ToxiproxyClient
) -> None:
    status, body = await api.call("GET", "/health/live")
    assert (status, body["status"]) == (200, "ok")
    # Ready once every pool has its connection: on a busy machine opening the first ones can
    # take longer than the probe's second.
    status, body = await until(lambda: ready(api))
    assert set(body["services"]) == set(SERVICES)
    await toxiproxy.disable(links["swap"].name)
    status, body = await api.call("GET", "/health/ready")
    assert status == 503
    assert body["status"] == "degraded"
    assert not body["services"]["swap"]["ready"]
    assert all(body["services"][s]["ready"] for s in SERVICES if s != "swap")
    # the kind of failure, for anyone to read; never the driver's host, port, role or db
    error = body["services"]["swap"]["error"]
    assert error in FAILURE_KINDS, error
    _, token = await api.new_user()
    status, body = await api.call("POST", "/api/swap/quotes", token=token,
                                  json={"sell": "BTC", "buy": "USDT", "amount": "0.1"})  # fmt: skip
    assert (status, body["error"]["service"]) == (503, "swap"), body
    message = body["error"]["message"]
    said = "swap: database unavailable ("
    assert message.startswith(said), message
    assert message.removeprefix(said).rstrip(")") in FAILURE_KINDS, message
    for secret in ("127.0.0.1", str(links["swap"].listen.rsplit(":", 1)[1]), "svc_", "exchange"):
        assert secret not in message + error, (secret, message, error)
    assert (await api.call("GET", "/health/ready/deposits"))[0] == 200
    assert (await api.call("GET", "/health/ready/swap"))[0] == 503
    status, body = await api.call("GET", "/health/ready/nope")
    assert status == 404
    assert "deposits" in body["error"]["message"]
    status, body = await api.call("GET", "/health/live")
    assert (status, body["status"]) == (200, "ok")


async def test_metrics_count_requests_and_show_pools(api: RunningApp) -> None:
    _, token = await api.new_user()
    for _ in range(3):
        assert (await api.call("GET", "/api/wallet/balances", token=token))[0] == 200
    assert (await api.call("GET", "/api/wallet/balances"))[0] == 401
    status, text = await api.call("GET", "/metrics")
    assert status == 200
    route = "/api/wallet/balances"
    assert metric(text, "http_requests_total", route=route, status="200", method="GET") == 3
    assert metric(text, "http_requests_total", route=route, status="401", method="GET") == 1
    assert metric(text, "http_request_duration_seconds_count", route=route, method="GET") == 4
    for service in SERVICES:
        assert metric(text, "db_pool_max_size", service=service) == 10
        assert metric(text, "db_pool_size", service=service) >= 0
        assert metric(text, "db_pool_waiting", service=service) == 0
        # 0 and present, not absent: "none happened" is measured (the harness judges it)
        assert metric(text, "db_pool_acquire_timeouts_total", service=service) == 0
        assert metric(text, "db_pool_dead_connections_total", service=service) == 0
    assert metric(text, "db_pool_size", service="wallet") >= 1
    assert metric(text, "db_pool_in_use", service="wallet") == 0
    assert metric(text, "db_pool_acquire_seconds_count", service="wallet") >= 3


async def test_openapi_matches_the_real_routes(api: RunningApp) -> None:
    status, doc = await api.call("GET", "/openapi.json")
    assert status == 200
    assert doc["openapi"].startswith("3.")
    served = {
        (resource.canonical, route.method.lower())
        for resource in api.app.router.resources()
        for route in resource
        if route.method != "HEAD"
    }
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert documented == served
    assert len(api.app[ROUTES]) == len(served)
    create = doc["paths"]["/api/nowpayments/create-deposit"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/CreateDeposit"
    )
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    assert "CreateDeposit" in doc["components"]["schemas"]


async def test_fault_api_is_absent_unless_enabled(start_app: StartApp) -> None:
    api = await start_app(fault_api=False)
    status, _body = await api.call("GET", "/api/_faults", token=ADMIN_TOKEN)
    assert status == 404
    status, doc = await api.call("GET", "/openapi.json")
    assert not [p for p in doc["paths"] if "_faults" in p]


async def set_fault(api: RunningApp, service: str, **body: Any) -> tuple[int, Any]:
    return await api.call("PUT", f"/api/_faults/{service}", token=ADMIN_TOKEN, json=body)


async def test_raise_fault_breaks_only_its_service(api: RunningApp) -> None:
    _, token = await api.new_user()
    status, body = await set_fault(api, "wallet", mode="raise")
    assert status == 200
    assert body["faults"]["wallet"]["mode"] == "raise"
    status, body = await api.call("GET", "/api/wallet/balances", token=token)
    assert status == 503
    assert (body["error"]["service"], body["error"]["code"]) == ("wallet", "service_broken")
    status, body = await api.call(
        "POST", "/api/nowpayments/create-deposit", token=token, key=secrets.token_hex(4),
        json={"currency": "BTC", "amount": "1"},
    )  # fmt: skip
    assert status == 201, body
    status, body = await api.call("DELETE", "/api/_faults", token=ADMIN_TOKEN)
    assert all(f["mode"] == "none" for f in body["faults"].values())
    assert (await api.call("GET", "/api/wallet/balances", token=token))[0] == 200


async def test_metrics_show_the_event_loop_lagging_while_it_is_blocked(api: RunningApp) -> None:
    _, text = await api.call("GET", "/metrics")
    counted = metric(text, "event_loop_lag_seconds_count")
    assert metric(text, "event_loop_lag_max_seconds") >= 0
    block = 0.4
    time.sleep(block)  # the app runs on this test's event loop: nothing runs meanwhile

    async def lag_seen() -> str | None:
        # The measuring task slept through the block: woken at least block - INTERVAL late.
        _, text = await api.call("GET", "/metrics")
        return text if metric(text, "event_loop_lag_max_seconds") >= block - INTERVAL else None

    text = await until(lag_seen)
    assert metric(text, "event_loop_lag_seconds_count") > counted
    assert metric(text, "event_loop_lag_seconds_bucket", le="0.25") < metric(
        text, "event_loop_lag_seconds_count"
    )


async def test_leak_fault_exhausts_only_its_pool(api: RunningApp) -> None:
    _, token = await api.new_user()
    assert (await set_fault(api, "wallet", mode="leak"))[0] == 200
    status, text = await api.call("GET", "/metrics")
    assert metric(text, "db_pool_in_use", service="wallet") == 10
    # the app counts what the leak holds: the harness's evidence that the fault took hold
    assert metric(text, "db_pool_leaked", service="wallet") == 10
    assert metric(text, "db_pool_leaked", service="deposits") == 0
    status, body = await api.call("GET", "/api/wallet/balances", token=token)
    assert status == 503
    assert (body["error"]["service"], body["error"]["code"]) == ("wallet", "pool_timeout")
    assert (await api.call("GET", "/health/ready/deposits"))[0] == 200
    await api.call("DELETE", "/api/_faults", token=ADMIN_TOKEN)
    status, text = await api.call("GET", "/metrics")
    assert metric(text, "db_pool_in_use", service="wallet") == 0
    assert metric(text, "db_pool_leaked", service="wallet") == 0
    assert (await api.call("GET", "/api/wallet/balances", token=token))[0] == 200


async def test_slow_fault_delays_its_service(api: RunningApp) -> None:
    import time

    _, token = await api.new_user()
    await set_fault(api, "wallet", mode="slow", slow_ms=300)
    started = time.monotonic()
    assert (await api.call("GET", "/api/wallet/balances", token=token))[0] == 200
    assert time.monotonic() - started >= 0.3


async def test_fault_api_bad_input(api: RunningApp) -> None:
    status, body = await set_fault(api, "nope", mode="raise")
    assert status == 404
    status, body = await set_fault(api, "wallet", mode="explode")
    assert status == 400
    assert "mode" in body["error"]["message"]
    status, body = await set_fault(api, "wallet", mode="slow", slow_ms=-1)
    assert status == 400
    status, body = await api.call("PUT", "/api/_faults/wallet", json={"mode": "raise"})
    assert status == 401


async def raw_request(api: RunningApp, head: bytes, body: bytes = b"") -> tuple[int, Any]:
    """One request written byte for byte (a client library would refuse or re-encode it)."""
    host, port = api.server.host, api.server.port
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                     .encode() + body)  # fmt: skip
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=30)
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2] or b"null")


async def test_odd_requests_are_4xx_with_a_reason(api: RunningApp) -> None:
    """A bearer token outside ASCII (compare_digest refuses to compare one) and a body nested
    thousands deep (json's recursion limit), each under the size limit: 4xx, never a 500."""
    head = (
        f"GET /api/wallet/balances HTTP/1.1\r\nHost: {api.server.host}\r\n"
        "Authorization: Bearer tökén\r\n"
    ).encode()
    status, body = await raw_request(api, head)
    assert (status, body["error"]["code"]) == (401, "unauthorized"), body
    _, token = await api.new_user()
    for nested in (b"[" * 20_000 + b"]" * 20_000, b'{"a":' * 8_000 + b"1" + b"}" * 8_000):
        assert len(nested) < 64 * 1024  # under the body limit: the parser sees it
        status, body = await api.call("POST", "/api/p2p/offers", token=token, data=nested,
                                      headers={"Content-Type": "application/json"})  # fmt: skip
        assert (status, body["error"]["code"]) == (400, "invalid_body"), body
        assert "nested too deeply" in body["error"]["message"]


async def test_legacy_errors_are_unstructured(start_app: StartApp) -> None:
    api = await start_app("legacy")
    _, token = await api.new_user()
    await set_fault(api, "wallet", mode="raise")
    status, body = await api.call("GET", "/api/wallet/balances", token=token)
    assert status == 500
    assert not isinstance(body, dict), body  # aiohttp's bare error page, no JSON shape


async def test_legacy_failures_of_one_feature_starve_the_others(start_app: StartApp) -> None:
    """No decree: P2P's failures leak the one shared pool's connections (no boundary gives
    them back), and deposits then wait for one (no acquire timeout)."""
    api = await start_app("legacy", pool={"min_size": 1, "max_size": 4})
    _, token = await api.new_user()
    await set_fault(api, "p2p", mode="raise")
    # While the pool still has connections, deposits are served: nothing is failed by fiat.
    for attempt in range(3):
        status, _ = await api.call("GET", "/api/p2p/offers", token=token)
        assert status == 500
        status, body = await api.call(
            "POST", "/api/nowpayments/create-deposit", token=token, key=f"legacy-{attempt}",
            json={"currency": "BTC", "amount": "1"},
        )  # fmt: skip
        assert status == 201, body
    status, _ = await api.call("GET", "/api/p2p/offers", token=token)
    assert status == 500  # the fourth failure took the last connection
    stats = api.app[DATABASES].stats()["shared"]
    assert (stats.in_use, stats.max_size) == (4, 4)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(3):
            await api.call(
                "POST", "/api/nowpayments/create-deposit", token=token, key="legacy-starved",
                json={"currency": "BTC", "amount": "1"},
            )  # fmt: skip


async def test_legacy_has_one_shared_pool(start_app: StartApp) -> None:
    api = await start_app("legacy")
    _, text = await api.call("GET", "/metrics")
    assert metric(text, "db_pool_max_size", service="shared") == 10
