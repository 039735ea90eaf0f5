"""What a run reads of the server under test: every second, the CPU the machine, the app and
PostgreSQL used, the pools' figures and the event loop's lag from the app's ``/metrics``,
the connections per application and the toxics present; after the load, the connections
settling back and the app ready again."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import psycopg2

from isolation_harness.chaos.errors import HarnessError
from isolation_harness.chaos.run.cpu import CpuReading, Roots, cpu_use, read_cpu
from isolation_harness.chaos.stack import backend, postgres
from isolation_harness.chaos.stack.state import StackState
from isolation_harness.chaos.toxiproxy.client import ToxiproxyClient
from isolation_harness.topology.services import APP_DATABASE

#: seconds the requests still in the app when the load ends may take to give back their
#: connections before the invariants look
SETTLE_SECONDS = 2.0
#: seconds between two looks at something awaited (readiness, settling)
POLL_INTERVAL = 0.05
SAMPLE_INTERVAL = 1.0
_METRIC = re.compile(r"^(db_pool_\w+)\{service=\"([^\"]*)\"\} (\S+)$", re.MULTILINE)
_LAG_MAX = re.compile(r"^event_loop_lag_max_seconds (\S+)$", re.MULTILINE)
_LAG_BUCKET = re.compile(r"^event_loop_lag_seconds_bucket\{le=\"([^\"]*)\"\} (\S+)$", re.MULTILINE)
#: the pool figures sampled from /metrics: Prometheus name -> name in the server samples
_POOL_FIGURES = {
    "db_pool_size": "size",
    "db_pool_in_use": "in_use",
    "db_pool_free": "free",
    "db_pool_waiting": "waiting",
    "db_pool_max_size": "max_size",
    "db_pool_leaked": "leaked",
    "db_pool_acquire_timeouts_total": "acquire_timeouts",
    "db_pool_dead_connections_total": "dead_connections",
}


async def sample_server(
    into: list[dict[str, Any]],
    state: StackState,
    http: aiohttp.ClientSession,
    tox: ToxiproxyClient,
    cluster: postgres.LocalCluster | None,
    load_pids: Sequence[int] = (),
) -> None:
    """Into ``into``, every second: the CPU the machine, the app, PostgreSQL and the whole
    run (:func:`cpu_roots`; ``load_pids``: its load generator's) used since the last
    sample, the pools' figures and the event loop's lag, connections per application,
    toxics present."""
    assert state.app is not None
    assert state.postgres is not None
    admin = postgres.with_dbname(state.postgres.dsn, APP_DATABASE)
    previous: CpuReading | None = None
    while True:
        entry: dict[str, Any] = {"at": time.time()}
        # First, so that the CPU figures cover the second that ends at "at".
        reading = await asyncio.to_thread(read_cpu, cpu_roots(state, cluster, load_pids))
        if previous is not None and reading is not None:
            entry["machine"] = cpu_use(previous, reading)
        previous = reading
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get(
                f"{state.app.url}/metrics", timeout=aiohttp.ClientTimeout(total=2)
            ) as answer:
                text = await answer.text()
            entry["pools"] = pool_gauges(text)
            lag = loop_lag(text)
            if lag is not None:
                entry["loop"] = lag
        with contextlib.suppress(HarnessError):
            entry["connections"] = await asyncio.to_thread(connections, admin)
        with contextlib.suppress(HarnessError, aiohttp.ClientError):
            entry["toxics"] = {
                name: len(proxy.toxics) for name, proxy in (await tox.proxies()).items()
            }
        into.append(entry)
        await asyncio.sleep(SAMPLE_INTERVAL)


def pool_gauges(text: str) -> dict[str, dict[str, float]]:
    """The pools' figures per service from the app's /metrics text."""
    gauges: dict[str, dict[str, float]] = {}
    for metric, service, value in _METRIC.findall(text):
        figure = _POOL_FIGURES.get(metric)
        if figure is not None:
            gauges.setdefault(service, {})[figure] = float(value)
    return gauges


def loop_lag(text: str) -> dict[str, Any] | None:
    """The app's event-loop lag from its /metrics text: the worst of the last second
    (``lag_max``, seconds) and the histogram's cumulative counts by upper bound
    (``lag_buckets``); None from an app that does not measure it."""
    found = _LAG_MAX.search(text)
    if found is None:
        return None
    return {
        "lag_max": float(found[1]),
        "lag_buckets": {bound: float(count) for bound, count in _LAG_BUCKET.findall(text)},
    }


def cpu_roots(
    state: StackState, cluster: postgres.LocalCluster | None, load_pids: Sequence[int] = ()
) -> dict[str, Roots]:
    """The roots of the process trees whose CPU is sampled: the app's server (its workers
    are its children), the postmaster of a local cluster (its backends are its), and
    ``run``: every process the run started or drives (those two, the provider fakes, the
    Toxiproxy server and the load generator's processes), so that what the rest of the
    machine used is known (``judge/saturation.py``). ``run`` is None while one of them is
    not running: what it measured would hide a part of the run among the others."""
    alive = {
        name: process.pid for name, process in state.processes.items() if process.record().alive()
    }
    postmaster = cluster.postmaster() if cluster is not None else None
    toxiproxy = state.toxiproxy.process if state.toxiproxy is not None else None
    run = [
        *alive.values(),
        *([postmaster.pid] if postmaster is not None else []),
        *([toxiproxy.pid] if toxiproxy is not None else []),
        *load_pids,
    ]
    return {
        "app": alive.get("app"),
        "postgres": postmaster.pid if postmaster is not None else None,
        "run": None if len(alive) < len(state.processes) else run,
    }


def connections(admin_dsn: str) -> dict[str, dict[str, int]]:
    conn = postgres.connect(admin_dsn, timeout=1)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT application_name, state, count(*) FROM pg_stat_activity "
                "WHERE application_name <> '' AND pid <> pg_backend_pid() "
                "GROUP BY application_name, state"
            )
            found: dict[str, dict[str, int]] = {}
            for name, state, count in cur.fetchall():
                found.setdefault(name, {})[state or "none"] = int(count)
            return found
    except Exception as exc:
        raise HarnessError(f"sampling pg_stat_activity: {exc}") from exc
    finally:
        conn.close()


def pool_capacity(state: StackState) -> dict[str, int]:
    """How many connections each pool name may hold, over all the app's workers."""
    assert state.app is not None
    pools = backend.read_settings(state.app.settings_file).pools()
    return {name: pool.max_size * state.app.workers for name, pool in pools.items()}


async def wait_ready(http: aiohttp.ClientSession, url: str, within: float) -> float | None:
    """Seconds until ``/health/ready`` answers 200, counted from the call (the last fault
    reverted); None when it did not within ``within`` seconds."""
    started = time.monotonic()
    deadline = started + within
    while (left := deadline - time.monotonic()) > 0:
        # No answer after the deadline counts: each probe waits only for what is left of it.
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with http.get(
                f"{url}/health/ready", timeout=aiohttp.ClientTimeout(total=min(2.0, left))
            ) as answer:
                if answer.status == 200:
                    return time.monotonic() - started
        await asyncio.sleep(POLL_INTERVAL)
    return None


def settle(admin_dsn: str, pools: list[str]) -> None:
    """Wait until no connection of the app's pools (by ``application_name``) is busy, at
    most :data:`SETTLE_SECONDS`: the requests still in the app when the load ended give
    theirs back before the invariants look. A database that cannot be read is left to
    the invariants to report."""
    deadline = time.monotonic() + SETTLE_SECONDS
    try:
        conn = postgres.connect(admin_dsn, timeout=1)
    except HarnessError:
        return
    try:
        with conn.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = ANY(%s) "
                    "AND state IS DISTINCT FROM 'idle' AND pid <> pg_backend_pid()",
                    (pools,),
                )
                row = cur.fetchone()
                if row is not None and row[0] == 0:
                    return
                time.sleep(POLL_INTERVAL)
    except psycopg2.Error:
        return
    finally:
        conn.close()
