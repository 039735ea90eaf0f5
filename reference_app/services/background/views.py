"""Background endpoints (admin only): the feed's prices, their history, the jobs.

The feed and the job statuses are per worker process: the answers name the worker.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from isolation_harness.reference_app.api_schema import Schema
from isolation_harness.reference_app.app_keys import SETTINGS, TOKENS
from isolation_harness.reference_app.errors import BadRequest, NotFound
from isolation_harness.reference_app.http_api import Route, query_int, respond
from isolation_harness.reference_app.services.background.domain import (
    FeedEntry,
    JobName,
    JobRun,
    JobStatus,
)
from isolation_harness.reference_app.services.background.feed import PriceFeed
from isolation_harness.reference_app.services.background.jobs import JobRunner
from isolation_harness.reference_app.services.background.service import BackgroundService

#: the background's state (here until ``reference_app.app_keys`` takes them in)
BACKGROUND = web.AppKey("background", BackgroundService)
#: absent when the app runs without a feed (``price_feed_interval`` None)
PRICE_FEED = web.AppKey("price_feed", PriceFeed)
JOBS = web.AppKey("jobs", JobRunner)

_PAIR = re.compile(r"([A-Z0-9]{2,10})-([A-Z0-9]{2,10})")
MAX_HISTORY = 1000
#: how far back a history request may look, in seconds (a week)
MAX_SINCE = 7 * 86_400


def _entry_json(entry: FeedEntry, now: datetime, max_age: float) -> dict[str, Any]:
    market = entry.market
    age = entry.age(now)
    return {
        "pair": entry.pair,
        "price": market.price if market is not None else None,
        "as_of": market.as_of if market is not None else None,
        "age_seconds": round(age, 3) if age is not None else None,
        "stale": entry.is_stale(now, max_age),
        "fetched_at": entry.fetched_at,
        "polled_at": entry.polled_at,
        "error": entry.error,
    }


async def feed_prices(request: web.Request) -> web.Response:
    """The feed's latest price of every pair, with its age and whether it is stale."""
    request.app[TOKENS].admin(request)
    settings = request.app[SETTINGS]
    feed = request.app.get(PRICE_FEED)
    if feed is None:
        return respond({"worker": os.getpid(), "feed": False,
                        "max_age_seconds": settings.price_max_age, "interval_seconds": None,
                        "last_poll": None, "prices": []})  # fmt: skip
    now = datetime.now(UTC)
    poll = feed.last_poll
    return respond(
        {
            "worker": os.getpid(),
            "feed": True,
            "max_age_seconds": feed.max_age,
            "interval_seconds": feed.interval,
            "last_poll": None if poll is None else {
                "started_at": poll.started_at, "finished_at": poll.finished_at,
                "priced": poll.priced, "failed": poll.failed, "error": poll.error,
            },
            "prices": [_entry_json(e, now, feed.max_age) for e in feed.entries()],
        }
    )  # fmt: skip


async def price_history(request: web.Request) -> web.Response:
    """The recorded prices of one pair (``?since_seconds=``, ``?limit=``), newest first."""
    request.app[TOKENS].admin(request)
    pair = _pair(request)
    since_seconds = query_int(request, "since_seconds", 3600, 1, MAX_SINCE)
    limit = query_int(request, "limit", 100, 1, MAX_HISTORY)
    since = datetime.now(UTC) - timedelta(seconds=since_seconds)
    records = await request.app[BACKGROUND].price_history(pair, since, limit)
    return respond(
        {
            "pair": pair,
            "prices": [
                {"price": r.price, "as_of": r.as_of, "fetched_at": r.fetched_at} for r in records
            ],
        }
    )


def _run_json(run: JobRun | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "outcome": run.outcome,
        "count": run.count,
        "error": run.error,
    }


def _status_json(status: JobStatus) -> dict[str, Any]:
    return {
        "job": status.job,
        "interval_seconds": status.interval,
        "runs": status.runs,
        "failures": status.failures,
        "total": status.total,
        "last_run": _run_json(status.last),
        "last_ok": _run_json(status.last_ok),
    }


async def job_status(request: web.Request) -> web.Response:
    """Each job's runs, failures, rows changed and last run, in this worker."""
    request.app[TOKENS].admin(request)
    statuses = request.app[JOBS].status()
    return respond({"worker": os.getpid(), "jobs": [_status_json(s) for s in statuses]})


async def run_job(request: web.Request) -> web.Response:
    """Run one job now, in this worker; the run's outcome (ok or failed) is in the answer."""
    request.app[TOKENS].admin(request)
    runner = request.app[JOBS]
    raw = request.match_info["job"]
    try:
        name = JobName(raw)
    except ValueError:
        raise NotFound(
            f"no job {raw!r} (known: {', '.join(runner.jobs)})", code="unknown_job"
        ) from None
    run = await runner.run_once(name)
    return respond({"job": name, "worker": os.getpid(), **(_run_json(run) or {})})


def pair_schema(currencies: Mapping[str, int]) -> Schema:
    pairs = [f"{one}-{other}" for one in currencies for other in currencies if one != other]
    return {"pair": {"type": "string", "enum": sorted(pairs)}}


def history_query(_: Mapping[str, int]) -> Schema:
    return {
        "since_seconds": {"type": "integer", "minimum": 1, "maximum": MAX_SINCE},
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_HISTORY},
    }


def job_schema(_: Mapping[str, int]) -> Schema:
    return {"job": {"type": "string", "enum": [job.value for job in JobName]}}


def _pair(request: web.Request) -> str:
    raw = request.match_info["pair"]
    match = _PAIR.fullmatch(raw)
    currencies = request.app[SETTINGS].currencies
    if match is None or match[1] == match[2]:
        raise BadRequest(f"pair: {raw!r} is not a pair such as BTC-USDT", code="invalid_pair")
    unknown = [c for c in (match[1], match[2]) if c not in currencies]
    if unknown:
        raise BadRequest(
            f"pair: unknown currency {unknown[0]} (known: {', '.join(sorted(currencies))})",
            code="invalid_pair",
        )
    return f"{match[1]}-{match[2]}"


ROUTES = [
    Route("GET", "/api/admin/prices", feed_prices,
          "The price feed's latest prices, their age and staleness (this worker)", "background",
          auth="admin"),
    Route("GET", "/api/admin/prices/{pair}/history", price_history,
          "The recorded prices of a pair, newest first", "background", auth="admin",
          path_schemas=pair_schema, query=history_query,
          responses={400: "bad pair or query", 503: "background database unavailable"}),
    Route("GET", "/api/admin/jobs", job_status,
          "The scheduled jobs: runs, failures, rows changed, last run (this worker)",
          "background", auth="admin"),
    Route("POST", "/api/admin/jobs/{job}/run", run_job,
          "Run a scheduled job now (this worker); the answer says how it went", "background",
          auth="admin", path_schemas=job_schema, responses={404: "no such job"}),
]  # fmt: skip
