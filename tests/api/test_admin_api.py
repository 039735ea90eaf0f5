"""The admin dashboard over HTTP: its shape, the default period, bad input, the token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest

from isolation_harness.reference_app.settings import SERVICES
from tests.plugins.reference_app import ADMIN_TOKEN, RunningApp, StartApp

DASHBOARD = "/api/admin/dashboard"
POOL_FIELDS = {"size", "in_use", "free", "waiting", "max_size", "leaked"}
USER = "user"  # stands for a user's token in the table below


def assert_error(status: int, body: Any, expected: int, code: str, fragment: str = "") -> None:
    assert status == expected, body
    assert set(body["error"]) == {"code", "message", "service", "request_id"}
    assert body["error"]["code"] == code, body
    assert fragment.lower() in body["error"]["message"].lower(), body


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_the_dashboard_shape_and_its_default_period(api: RunningApp) -> None:
    before = datetime.now(UTC)
    status, body = await api.call("GET", DASHBOARD, token=ADMIN_TOKEN)
    after = datetime.now(UTC)
    assert status == 200, body
    assert set(body) == {"period", "as_of", "revenue", "liquidity", "counts", "pools"}

    start, end = at(body["period"]["from"]), at(body["period"]["to"])
    assert before <= end <= after
    assert end - start == timedelta(hours=24)
    assert end <= at(body["as_of"]) <= after

    revenue = body["revenue"]
    assert set(revenue) == {"account", "by_service", "totals"}
    assert revenue["account"] == "platform:revenue"
    assert set(revenue["by_service"]) >= {"p2p", "swap", "express"}
    for by_currency in revenue["by_service"].values():
        for earned in by_currency.values():
            assert set(earned) == {"fees", "transactions"}
            assert isinstance(earned["fees"], str)
            assert Decimal(earned["fees"]) > 0
            assert isinstance(earned["transactions"], int)
    assert all(isinstance(v, str) for v in revenue["totals"].values())

    assert body["liquidity"]["account"] == "platform:liquidity"
    balances = body["liquidity"]["balances"]
    assert set(balances) >= {"BTC", "ETH", "USDT", "USD"}
    assert all(isinstance(v, str) and Decimal(v) >= 0 for v in balances.values())

    assert set(body["counts"]) == {"deposits", "p2p_trades", "swap_quotes"}
    assert {"waiting", "finished", "expired"} <= set(body["counts"]["deposits"])
    assert {"open", "released", "disputed"} <= set(body["counts"]["p2p_trades"])
    assert {"open", "executed", "expired"} <= set(body["counts"]["swap_quotes"])

    assert set(body["pools"]) == set(SERVICES)
    for stats in body["pools"].values():
        assert set(stats) == POOL_FIELDS
        assert stats["max_size"] == 10
    # The dashboard's own query ran on the admin's pool, which has opened a connection.
    assert body["pools"]["admin"]["size"] >= 1


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00Z",
         "2025-01-01T00:00:00+00:00", "2025-01-02T00:00:00+00:00"),
        # without an offset: UTC
        ("from=2025-01-01T00:00:00&to=2025-01-01T06:30:00",
         "2025-01-01T00:00:00+00:00", "2025-01-01T06:30:00+00:00"),
        # other offsets: the same instants, in UTC
        (f"from={quote('2025-01-01T02:00:00+02:00')}&to={quote('2025-01-01T00:00:00-05:00')}",
         "2025-01-01T00:00:00+00:00", "2025-01-01T05:00:00+00:00"),
        # dates alone: midnight UTC
        ("from=2025-03-01&to=2025-03-02", "2025-03-01T00:00:00+00:00", "2025-03-02T00:00:00+00:00"),
        # RFC 3339 lets the T and the Z be lower-case
        ("from=2025-03-01t00:00:00z&to=2025-03-02", "2025-03-01T00:00:00+00:00",
         "2025-03-02T00:00:00+00:00"),
        # only "to": the 24 hours before it
        ("to=2025-01-02T12:00:00Z", "2025-01-01T12:00:00+00:00", "2025-01-02T12:00:00+00:00"),
        # the longest period
        ("from=2024-01-01T00:00:00Z&to=2025-01-01T00:00:00Z",
         "2024-01-01T00:00:00+00:00", "2025-01-01T00:00:00+00:00"),
    ],
)  # fmt: skip
async def test_the_period_is_read_as_given(
    api: RunningApp, query: str, start: str, end: str
) -> None:
    status, body = await api.call("GET", f"{DASHBOARD}?{query}", token=ADMIN_TOKEN)
    assert status == 200, body
    assert body["period"] == {"from": start, "to": end}


async def test_only_from_given_ends_now(api: RunningApp) -> None:
    start = datetime.now(UTC) - timedelta(hours=2)
    status, body = await api.call(
        "GET", f"{DASHBOARD}?from={quote(start.isoformat())}", token=ADMIN_TOKEN
    )
    assert status == 200, body
    assert at(body["period"]["from"]) == start
    assert abs(at(body["period"]["to"]) - datetime.now(UTC)) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("query", "token", "status", "code", "fragment"),
    [
        # who may ask
        ("", None, 401, "unauthorized", "bearer"),
        ("", "not-the-admin-token", 401, "unauthorized", "invalid token"),
        ("", USER, 403, "forbidden", "admin"),
        # bad times
        ("from=yesterday", ADMIN_TOKEN, 400, "invalid_query", "from"),
        # in the syntax the document gives, but no time that can be: month 13, hour 25, +25:00
        ("to=2025-13-01T00:00:00Z", ADMIN_TOKEN, 400, "invalid_range", "to"),
        ("from=2025-01-01T25:00:00Z", ADMIN_TOKEN, 400, "invalid_range", "no time"),
        (f"from={quote('2025-01-01T00:00:00+25:00')}", ADMIN_TOKEN, 400, "invalid_range", "from"),
        ("from=", ADMIN_TOKEN, 400, "invalid_query", "from"),
        ("to=%20", ADMIN_TOKEN, 400, "invalid_query", "to"),
        ("from=1735689600", ADMIN_TOKEN, 400, "invalid_query", "from"),
        ("from=" + "2" * 100, ADMIN_TOKEN, 400, "invalid_query", "from"),
        # bad periods
        ("from=2025-01-02T00:00:00Z&to=2025-01-01T00:00:00Z", ADMIN_TOKEN, 400, "invalid_range",
         "from must be before to"),
        ("from=2025-01-01T00:00:00Z&to=2025-01-01T00:00:00Z", ADMIN_TOKEN, 400, "invalid_range",
         "before"),
        (f"from={quote('2025-01-01T01:00:00+01:00')}&to=2025-01-01T00:00:00Z", ADMIN_TOKEN, 400,
         "invalid_range", "before"),
        ("from=2023-01-01T00:00:00Z&to=2025-01-01T00:00:00Z", ADMIN_TOKEN, 400, "invalid_range",
         "366 days"),
        ("to=0001-01-01T00:00:00Z", ADMIN_TOKEN, 400, "invalid_range", "year 1"),
        # bad parameters
        ("since=2025-01-01", ADMIN_TOKEN, 400, "invalid_query", "unknown query parameter(s)"),
        ("from=2025-01-01&currency=BTC&x=1", ADMIN_TOKEN, 400, "invalid_query", "currency, x"),
        ("from=2025-01-01&from=2025-01-02", ADMIN_TOKEN, 400, "invalid_query", "more than once"),
    ],
)  # fmt: skip
async def test_bad_requests_are_4xx_with_a_reason(
    api: RunningApp, query: str, token: str | None, status: int, code: str, fragment: str
) -> None:
    if token == USER:
        _, token = await api.new_user()
    answer, body = await api.call("GET", f"{DASHBOARD}?{query}", token=token)
    assert_error(answer, body, status, code, fragment)


async def test_the_dashboard_is_read_only(api: RunningApp) -> None:
    """Every other method is a 405 in the app's error shape, saying which it allows."""
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        async with api.http.request(
            method, api.url(DASHBOARD), json={}, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        ) as answer:
            body = await answer.json()
            assert answer.status == 405, method
            assert set(answer.headers["Allow"].split(",")) >= {"GET"}, method
            assert body["error"]["code"] == "method_not_allowed"


async def test_a_broken_admin_service_is_its_own_503(api: RunningApp) -> None:
    _, token = await api.new_user()
    status, body = await api.call(
        "PUT", "/api/_faults/admin", token=ADMIN_TOKEN, json={"mode": "raise"}
    )
    assert status == 200, body
    try:
        status, body = await api.call("GET", DASHBOARD, token=ADMIN_TOKEN)
        assert_error(status, body, 503, "service_broken")
        assert body["error"]["service"] == "admin"
        assert (await api.call("GET", "/api/wallet/balances", token=token))[0] == 200
    finally:
        await api.call("DELETE", "/api/_faults", token=ADMIN_TOKEN)
    assert (await api.call("GET", DASHBOARD, token=ADMIN_TOKEN))[0] == 200


async def test_the_dashboard_works_on_the_legacy_design(start_app: StartApp) -> None:
    api = await start_app("legacy")
    status, body = await api.call("GET", DASHBOARD, token=ADMIN_TOKEN)
    assert status == 200, body
    assert set(body["pools"]) == {"shared"}
    assert set(body["counts"]) == {"deposits", "p2p_trades", "swap_quotes"}
