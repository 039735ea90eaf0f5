"""Admin endpoints: parse, call one use case, respond."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from isolation_harness.reference_app.api_schema import Schema
from isolation_harness.reference_app.app_keys import ADMIN, TOKENS
from isolation_harness.reference_app.errors import BadRequest
from isolation_harness.reference_app.http_api import Route, respond
from isolation_harness.reference_app.services.admin.domain import BadPeriod, Dashboard, Period

DASHBOARD_PARAMETERS = frozenset({"from", "to"})
#: the times the dashboard takes, by syntax (whether the day, hour and offset exist is
#: checked apart): a date, a date-time with or without an offset
_NAIVE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}|" + _NAIVE + r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})?")


def parse_time(name: str, raw: str) -> datetime:
    """A time as :func:`period_query` describes it: an RFC 3339 date-time, a date (its
    midnight) or a date-time without offset, both taken as UTC."""
    if _TIME.fullmatch(raw) is None:
        raise BadRequest(
            f"{name}: {raw[:40]!r} is not a time such as 2025-01-01T00:00:00Z (or 2025-01-01)",
            code="invalid_query",
        )
    try:
        value = datetime.fromisoformat(raw.upper())
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    except (ValueError, OverflowError):  # no such day, hour or offset; before year 1
        raise BadRequest(f"{name}: {raw!r} is no time that can be", code="invalid_range") from None


def parse_period(request: web.Request, now: datetime) -> Period:
    """``from`` and ``to`` of the query; by default the 24 hours before ``to`` (or now)."""
    unknown = sorted(set(request.query) - DASHBOARD_PARAMETERS)
    if unknown:
        raise BadRequest(
            f"unknown query parameter(s): {', '.join(unknown)} (known: from, to)",
            code="invalid_query",
        )
    for name in DASHBOARD_PARAMETERS:
        if len(request.query.getall(name, [])) > 1:
            raise BadRequest(f"{name}: given more than once", code="invalid_query")
    raw_start, raw_end = request.query.get("from"), request.query.get("to")
    end = parse_time("to", raw_end) if raw_end is not None else now
    try:
        if raw_start is None:
            return Period.ending(end)
        return Period(parse_time("from", raw_start), end)
    except BadPeriod as exc:
        raise BadRequest(str(exc), code="invalid_range") from None


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    revenue = dashboard.revenue
    return {
        "period": {"from": dashboard.period.start, "to": dashboard.period.end},
        "as_of": dashboard.as_of,
        "revenue": {
            "account": dashboard.revenue_account,
            "by_service": {
                service: {
                    currency: {"fees": earned.fees, "transactions": earned.transactions}
                    for currency, earned in by_currency.items()
                }
                for service, by_currency in revenue.by_service.items()
            },
            "totals": revenue.totals,
        },
        "liquidity": {"account": dashboard.liquidity_account, "balances": dashboard.liquidity},
        "counts": dashboard.counts,
        "pools": {name: dataclasses.asdict(stats) for name, stats in dashboard.pools.items()},
    }


def period_query(_: Mapping[str, int]) -> Schema:
    time = {
        "type": "string",
        "anyOf": [{"format": "date-time"}, {"format": "date"}, {"pattern": f"^{_NAIVE}$"}],
        "description": "an RFC 3339 date-time, a date (its midnight, UTC) or a date-time "
        "without offset (UTC)",
    }
    return {"from": time, "to": time}


PERIOD_RULES = {
    "invalid_range": "each time exists (a real day, hour and offset, in years 1 to 9999), "
    "from before to, and at most the longest period apart",
}


async def dashboard(request: web.Request) -> web.Response:
    request.app[TOKENS].admin(request)
    period = parse_period(request, datetime.now(UTC))
    return respond(dashboard_json(await request.app[ADMIN].dashboard(period)))


ROUTES = [
    Route("GET", "/api/admin/dashboard", dashboard,
          "Revenue and fees per service and currency, liquidity, counts by state and pool "
          "figures (query: from, to: ISO-8601 times; default the last 24 hours)", "admin",
          auth="admin", query=period_query, rules=PERIOD_RULES,
          responses={400: "bad time or period", 503: "the admin database is unavailable"}),
]  # fmt: skip
