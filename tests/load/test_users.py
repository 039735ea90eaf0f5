"""The Locust users against the real app, run by real Locust in a subprocess.

Locust monkey-patches the standard library with gevent when imported, so it never is in
this process: every run, and every look at the locustfile's classes, is a subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from isolation_harness.chaos.invariants import Facts, check_invariants
from isolation_harness.chaos.invariants.facts import database_now_at, provider_book
from isolation_harness.load.kinds import CLIENT_TIMEOUT, KINDS, requests_of
from isolation_harness.load.operations import (
    ACKNOWLEDGED,
    INDETERMINATE,
    OPERATION_KINDS,
    read_operations,
)
from isolation_harness.load.samples import Sample, read_samples, read_summaries
from isolation_harness.load.users.stack import admin_token, stack_app
from isolation_harness.topology.environment import (
    ENV_ADMIN_TOKEN,
    ENV_MIX,
    ENV_PAYMENTS_URL,
    ENV_SAMPLES_DIR,
    ENV_SEED,
    ENV_STATE_DIR,
    ENV_THINK_TIME,
)
from isolation_harness.topology.ports import free_port
from tests.plugins.polling import until, wait_until
from tests.plugins.reference_app import (
    ADMIN_TOKEN,
    PaymentsFake,
    PricesFake,
    RunningApp,
    StartApp,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = PROJECT_ROOT / "load" / "locustfile.py"
NAME = re.compile(r"^[a-z0-9]+\.[a-z0-9_]+$")
#: the variables a run sets itself; anything inherited would change what it tests
OWN_VARIABLES = (
    ENV_ADMIN_TOKEN, ENV_MIX, ENV_PAYMENTS_URL, ENV_SAMPLES_DIR, ENV_SEED, ENV_STATE_DIR,
    ENV_THINK_TIME,
)  # fmt: skip


@dataclass
class LocustRun:
    returncode: int
    output: str
    folder: Path

    @property
    def samples(self) -> list[Sample]:
        return read_samples(self.folder)


async def run_locust(
    folder: Path, *args: str, env: Mapping[str, str], users: int, run_time: str
) -> LocustRun:
    """``locust -f load/locustfile.py --headless`` in a subprocess; its samples in ``folder``.

    ``run_time`` counts from Locust's start: on a machine busy with the rest of the suite
    its start-up and the users' sign-up take seconds, so a run that must see a request of
    some kind lasts several seconds more than that request needs, with short pauses (a
    3-second run once ended before a depositor's first deposit)."""
    environ = {k: v for k, v in os.environ.items() if k not in OWN_VARIABLES}
    environ.update({ENV_SAMPLES_DIR: str(folder), **env})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        "-u", str(users), "-r", str(users), "--run-time", run_time, "--only-summary", *args,
        cwd=PROJECT_ROOT, env=environ,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return LocustRun(process.returncode or 0, output.decode(errors="replace"), folder)


def probe_locustfile(env: Mapping[str, str], result: str, *imports: str) -> tuple[int, Any, str]:
    """Load the locustfile in a subprocess and read back ``result`` (a Python expression
    over ``classes``, the User classes Locust finds there, name -> class) as JSON."""

    probe = (
        "import gc, json, sys\n"
        "from locust.util.load_locustfile import load_locustfile\n"
        + "".join(f"{line}\n" for line in imports)
        + "classes, _ = load_locustfile(sys.argv[1])\n"
        f"print(json.dumps({result}))\n"
    )
    environ = {k: v for k, v in os.environ.items() if k not in OWN_VARIABLES}
    done = subprocess.run(
        [sys.executable, "-c", probe, str(LOCUSTFILE)], cwd=PROJECT_ROOT,
        env={**environ, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    found = json.loads(done.stdout.splitlines()[-1]) if done.returncode == 0 else None
    return done.returncode, found, done.stderr


def locust_classes(env: Mapping[str, str]) -> tuple[int, dict[str, int], str]:
    """The User classes Locust finds in the locustfile (name -> weight)."""
    returncode, found, stderr = probe_locustfile(env, "{n: c.weight for n, c in classes.items()}")
    return returncode, found or {}, stderr


@pytest.fixture
def prices_url(prices_fake: PricesFake) -> str:
    """The price-source fake the app fixtures already started (reached directly here)."""
    return prices_fake.url


@pytest.fixture
async def app(start_app: StartApp, prices_url: str) -> RunningApp:
    # Quotes expire quickly, so that executing a kept quote meets the expected 410 too.
    return await start_app(prices_url=prices_url, quote_ttl_seconds=0.3)


def app_url(app: RunningApp) -> str:
    return app.url("/").rstrip("/")


def assert_clean(run: LocustRun) -> None:
    """Every request answered, judged a success, and named ``<service>.<action>``."""
    assert run.returncode == 0, run.output
    assert run.samples, run.output
    bad = [s for s in run.samples if s.failed or s.status == 0 or s.status >= 500]
    assert not bad, (bad[:5], run.output)
    assert {s.name for s in run.samples if not NAME.match(s.name)} == set()
    # The only non-2xx answers are the expected domain refusals.
    assert {s.status for s in run.samples if s.status >= 300} <= {409, 410}


async def test_every_kind_of_user_against_the_app(
    app: RunningApp, payments_fake: PaymentsFake, app_database: str, tmp_path: Path
) -> None:
    since = await asyncio.to_thread(database_now_at, app_database)
    run = await run_locust(
        tmp_path, "-H", app_url(app), users=10, run_time="8s",
        env={ENV_ADMIN_TOKEN: ADMIN_TOKEN, ENV_PAYMENTS_URL: payments_fake.url,
             ENV_MIX: "deposits=3,wallet=2,p2p=2,swap=2,admin=1"},
    )  # fmt: skip
    assert_clean(run)
    names = Counter(s.name for s in run.samples)
    expected = {
        "users.create", "admin.credit", "deposits.create", "deposits.get", "wallet.balances",
        "wallet.withdraw", "p2p.offer_create", "p2p.trade_open", "p2p.trade_paid",
        "p2p.trade_release", "swap.quote", "swap.execute", "provider.pay",
    }  # fmt: skip
    assert expected <= set(names), names
    # the request names scenario files are checked against are the ones the users make
    assert set(names) <= set(requests_of(["deposits", "wallet", "p2p", "swap", "admin"]))
    assert names["users.create"] >= 10 + 2  # one account each, two per p2p trader

    [summary] = read_summaries(tmp_path)
    assert summary["role"] == "local"
    assert isinstance(summary["cpu_warning"], bool)
    assert summary["samples"] == len(run.samples)

    operations = read_operations(tmp_path)
    acknowledged = Counter(o.kind for o in operations if o.outcome == ACKNOWLEDGED)
    made = ("deposit.create", "deposit.pay", "admin.credit", "wallet.withdraw",
            "p2p.trade_open", "p2p.trade_paid", "p2p.trade_release", "swap.execute")  # fmt: skip
    for kind in made:
        assert acknowledged[kind] > 0, acknowledged
    # One acknowledged operation per 2xx answer of that group, and every sample of a money
    # call has its operation (written before the request went out).
    created = sum(1 for s in run.samples if s.name == "deposits.create" and s.status == 201)
    assert acknowledged["deposit.create"] == created
    recorded = Counter(o.kind for o in operations if o.completed)
    assert recorded["wallet.withdraw"] == names["wallet.withdraw"]
    # Those the end of the run cut off are of unknown outcome.
    assert {o.outcome for o in operations if not o.completed} <= {INDETERMINATE}
    for operation in operations:
        assert set(OPERATION_KINDS[operation.kind].fields) <= set(operation.sent), operation
        Decimal(operation.sent.get("amount", "0"))  # the client's own decimal string

    # The oracle, on this real run: nothing lost, unexpected or duplicated; the provider's
    # book reconciles with the ledger.
    book = await asyncio.to_thread(provider_book, payments_fake.url)
    results = await asyncio.to_thread(
        check_invariants, app_database, ["no_operation_lost", "provider_reconciled"],
        Facts(None, operations=operations, since=since, payments=book),
    )  # fmt: skip
    for result in results:
        assert result.passed, (result.name, result.violations[:5], result.counts)
    lost, reconciled = results
    assert lost.checked == len([o for o in operations if o.outcome == ACKNOWLEDGED])
    assert reconciled.counts["credited"] == acknowledged["deposit.pay"]


async def test_a_mix_of_health_only_runs_liveness_only(app: RunningApp, tmp_path: Path) -> None:
    run = await run_locust(
        tmp_path, "-H", app_url(app), users=1, run_time="4s",
        env={ENV_ADMIN_TOKEN: ADMIN_TOKEN, ENV_MIX: "health"},
    )  # fmt: skip
    assert_clean(run)
    assert {s.name for s in run.samples} == {"health.live"}
    assert len(run.samples) > 50  # no wait time: as fast as the app answers
    assert read_operations(tmp_path) == []


async def test_each_sample_keeps_the_error_code_and_service_the_app_answered(
    app: RunningApp, tmp_path: Path
) -> None:
    """With deposits broken through the fault API, every ``deposits.create`` sample is a
    failure carrying deposits' own code and name, read from the app's error body; the
    calls to other services around it succeed."""
    status, body = await app.call(
        "PUT", "/api/_faults/deposits", token=ADMIN_TOKEN, json={"mode": "raise"}
    )
    assert status == 200, body
    try:
        run = await run_locust(
            tmp_path, "-H", app_url(app), users=2, run_time="6s",
            env={ENV_ADMIN_TOKEN: ADMIN_TOKEN, ENV_MIX: "deposits", ENV_THINK_TIME: "0,0.05"},
        )  # fmt: skip
    finally:
        await app.call("DELETE", "/api/_faults", token=ADMIN_TOKEN)
    by_name: dict[str, set[tuple[int, bool, str | None, str | None]]] = {}
    for s in run.samples:
        by_name.setdefault(s.name, set()).add((s.status, s.failed, s.error_code, s.error_service))
    assert by_name["deposits.create"] == {(503, True, "service_broken", "deposits")}, by_name
    assert by_name["users.create"] == {(201, False, None, None)}, by_name
    assert by_name["admin.credit"] == {(201, False, None, None)}, by_name


async def test_plain_locust_opens_its_web_ui_against_the_stack(
    app: RunningApp, tmp_path: Path
) -> None:
    """``locust -f load/locustfile.py`` with no flags: Locust's web UI, host from the stack."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "stack.json").write_text(
        json.dumps({"app": {"url": app_url(app), "admin_token": ADMIN_TOKEN}})
    )
    port = free_port()
    ui = f"http://127.0.0.1:{port}"
    environ = {k: v for k, v in os.environ.items() if k not in OWN_VARIABLES}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE),
        "--web-host", "127.0.0.1", "--web-port", str(port),
        cwd=PROJECT_ROOT, env={**environ, ENV_STATE_DIR: str(state)},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            page = await until(
                lambda: answer(http, f"{ui}/", lambda status, _: status == 200), timeout=30
            )
            assert app_url(app) in page  # the host field is the stack's app
            async with http.post(f"{ui}/swarm", data={"user_count": "3", "spawn_rate": "3"}) as r:
                assert (await r.json())["success"], await r.text()
            report = await until(
                lambda: answer(
                    http, f"{ui}/stats/requests",
                    lambda _, text: _requests(text, "deposits.create") > 0,
                ),
                timeout=30,
            )  # fmt: skip
            total = json.loads(report)["stats"][-1]
            assert total["name"] == "Aggregated"
            assert total["num_requests"] > 0
            assert total["num_failures"] == 0, report
            async with http.post(f"{ui}/stop") as r:
                assert r.status == 200
    finally:
        process.terminate()
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode in (0, -signal.SIGTERM), stderr.decode(errors="replace")


@contextlib.asynccontextmanager
async def serving(server: web.Application) -> AsyncIterator[str]:
    """``server`` on a free loopback port for the block; its URL."""
    runner = web.AppRunner(server, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def answer(
    http: aiohttp.ClientSession, url: str, done: Callable[[int, str], bool]
) -> str | None:
    """``GET url``'s text if ``done(status, text)``, else None (also while nobody listens)."""
    try:
        async with http.get(url) as response:
            text = await response.text()
            return text if done(response.status, text) else None
    except aiohttp.ClientConnectionError:
        return None


def _requests(report: str, name: str) -> int:
    return sum(s["num_requests"] for s in json.loads(report)["stats"] if s["name"] == name)


async def test_users_never_send_cookies_back(tmp_path: Path) -> None:
    """The API uses bearer tokens: the users keep no cookie jar, whatever a server sets."""
    cookies_sent: list[str] = []

    async def live(request: web.Request) -> web.Response:
        cookies_sent.extend(request.headers.getall("Cookie", []))
        response = web.json_response({"status": "ok"})
        response.set_cookie("session", uuid.uuid4().hex)
        return response

    server = web.Application()
    server.router.add_get("/health/live", live)
    async with serving(server) as url:
        run = await run_locust(
            tmp_path, "-H", url, users=2, run_time="4s",
            env={ENV_MIX: "health"},
        )  # fmt: skip
    assert_clean(run)
    assert len(run.samples) > 50  # each answer set a cookie: a jar would have sent it
    assert cookies_sent == []


def test_every_locust_process_shares_the_client_settings() -> None:
    """Every kind of user is an ApiUser; the locustfile sets the collector's thresholds."""
    returncode, found, stderr = probe_locustfile(
        {ENV_MIX: ",".join(KINDS)},
        "{'api': sorted(n for n, c in classes.items() if issubclass(c, ApiUser)),"
        " 'gc': gc.get_threshold(),"
        " 'wanted': sys.modules[next(iter(classes.values())).__module__].GC_THRESHOLDS}",
        "from isolation_harness.load.users.api import ApiUser",
    )
    assert returncode == 0, stderr
    assert found["api"] == sorted(KINDS.values())
    assert found["gc"] == found["wanted"]
    assert found["gc"][0] > 700  # Python's default: collected every few requests


async def test_host_and_admin_token_default_to_the_stack(app: RunningApp, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "stack.json").write_text(
        json.dumps({"app": {"url": app_url(app) + "/", "admin_token": ADMIN_TOKEN}})
    )
    samples = tmp_path / "samples"
    run = await run_locust(
        samples,
        users=1,
        run_time="5s",
        env={ENV_MIX: "wallet", ENV_STATE_DIR: str(state), ENV_THINK_TIME: "0,0.05"},
    )
    assert_clean(run)
    names = {s.name for s in run.samples}
    # signed up on the stack's app, funded with its admin token, then the user's own work
    # (which wallet requests, the user's choice: a busy machine leaves time for a few)
    assert {"users.create", "admin.credit"} <= names, run.output
    assert any(name.startswith("wallet.") for name in names), run.output
    assert any(o.kind == "admin.credit" for o in read_operations(samples))


@pytest.mark.parametrize(
    ("mix", "classes"),
    [
        (None, {"DepositorUser": 4, "WalletUser": 3, "P2PTraderUser": 2, "SwapperUser": 2}),
        ("deposits=6,p2p=2", {"DepositorUser": 6, "P2PTraderUser": 2}),
        ("health", {"LivenessUser": 1}),
        (",".join(KINDS), dict.fromkeys(KINDS.values(), 1)),
    ],
    ids=["default", "two-kinds", "health-only", "every-kind"],
)
def test_the_mix_decides_which_classes_locust_runs(
    mix: str | None, classes: dict[str, int]
) -> None:
    returncode, found, stderr = locust_classes({ENV_MIX: mix} if mix else {})
    assert returncode == 0, stderr
    assert found == classes


def test_the_think_time_replaces_every_kinds_own() -> None:
    pauses = "{n: list(c.think_time) for n, c in classes.items()}"
    env = {ENV_MIX: "deposits,admin"}
    returncode, found, stderr = probe_locustfile({**env, ENV_THINK_TIME: "0"}, pauses)
    assert returncode == 0, stderr
    assert found == {"DepositorUser": [0.0, 0.0], "AdminUser": [0.0, 0.0]}
    returncode, found, stderr = probe_locustfile({**env, ENV_THINK_TIME: "2,3"}, pauses)
    assert returncode == 0, stderr
    assert found == {"DepositorUser": [2.0, 3.0], "AdminUser": [2.0, 3.0]}
    returncode, found, stderr = probe_locustfile(env, pauses)  # each kind's own
    assert returncode == 0, stderr
    assert found == {"DepositorUser": [0.05, 0.3], "AdminUser": [0.3, 1.0]}
    returncode, _, stderr = probe_locustfile({**env, ENV_THINK_TIME: "soon"}, pauses)
    assert returncode != 0
    assert "HARNESS_THINK_TIME='soon'" in stderr


def test_each_user_draws_its_tasks_and_pauses_from_its_own_seeded_streams() -> None:
    """Built in another process with the same seed, a user chooses the same tasks and
    pauses; the next user of its kind, or another seed, others."""
    users = (
        "{str(u.simulated): [[u.next_task().__name__ for _ in range(12)],"
        " [u.wait_time() for _ in range(5)]] for u in build()}"
    )
    build = (
        "from locust.env import Environment",
        "from isolation_harness.load.seeding import Roster",
        "from isolation_harness.load.users.seeded import use_roster",
        "def build():",
        "    environment = Environment()",
        "    locustfile = sys.modules[next(iter(classes.values())).__module__]",
        "    use_roster(environment, Roster(locustfile.SEED))",
        "    for c in classes.values(): c.host = 'http://127.0.0.1:9'",
        "    return [c(environment) for c in classes.values() for _ in range(2)]",
    )
    env = {ENV_MIX: "deposits,swap", ENV_THINK_TIME: "0.1,0.2"}
    runs = []
    for seed in ("7", "7", "8"):
        returncode, found, stderr = probe_locustfile({**env, ENV_SEED: seed}, users, *build)
        assert returncode == 0, stderr
        runs.append(found)
    first, again, other = runs
    assert sorted(first) == ["deposits#0.0", "deposits#0.1", "swap#0.0", "swap#0.1"]
    assert first == again
    for name, (tasks, pauses) in first.items():
        assert other[name] != [tasks, pauses]
        assert all(0.1 <= pause <= 0.2 for pause in pauses)
    assert first["deposits#0.0"][0] != first["deposits#0.1"][0]
    assert {"create_deposit", "read_deposit"} <= set(first["deposits#0.0"][0])


def test_a_bad_seed_stops_locust_with_the_reason() -> None:
    returncode, _, stderr = locust_classes({ENV_SEED: "forty-two"})
    assert returncode != 0
    assert "HARNESS_SEED='forty-two'" in stderr


def test_a_bad_mix_stops_locust_with_the_reason() -> None:
    returncode, _, stderr = locust_classes({ENV_MIX: "deposits=6,bogus=1"})
    assert returncode != 0
    assert "HARNESS_MIX" in stderr
    assert "unknown user kind 'bogus'" in stderr


def test_the_users_package_imports_no_locust() -> None:

    probe = (
        "import sys, load.users, load.users.stack\n"
        "assert not {'locust', 'gevent'} & set(sys.modules), sorted(sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_stack_app_reads_the_state_file(tmp_path: Path) -> None:
    env = {ENV_STATE_DIR: str(tmp_path)}
    assert stack_app(env) is None  # no stack
    (tmp_path / "stack.json").write_text("{not json")
    assert stack_app(env) is None
    (tmp_path / "stack.json").write_text(json.dumps({"app": None}))
    assert stack_app(env) is None
    (tmp_path / "stack.json").write_text(
        json.dumps({"app": {"url": "http://127.0.0.1:8080/", "admin_token": "from-stack"}})
    )
    app = stack_app(env)
    assert app is not None
    assert (app.url, app.admin_token) == ("http://127.0.0.1:8080", "from-stack")
    assert admin_token(env) == "from-stack"
    assert admin_token({**env, ENV_ADMIN_TOKEN: "from-env"}) == "from-env"


async def test_express_buyers_fund_liquidity_and_buy_from_it(
    app: RunningApp, tmp_path: Path
) -> None:
    run = await run_locust(
        tmp_path, "-H", app_url(app), users=4, run_time="4s",
        env={ENV_ADMIN_TOKEN: ADMIN_TOKEN, ENV_MIX: "express=1"},
    )  # fmt: skip
    assert_clean(run)
    names = Counter(s.name for s in run.samples)
    assert {"users.create", "admin.credit", "admin.liquidity", "express.quote",
            "express.order"} <= set(names), names  # fmt: skip
    assert set(names) <= set(requests_of(["express"]))
    operations = read_operations(tmp_path)
    orders = [o for o in operations if o.kind == "express.order" and o.outcome == ACKNOWLEDGED]
    assert orders
    assert len({o.returned["transaction_id"] for o in orders}) == len(orders)
    filled = sum(1 for s in run.samples if s.name == "express.order" and s.status == 201)
    assert len(orders) == filled
    assert any(o.kind == "admin.liquidity" and o.outcome == ACKNOWLEDGED for o in operations)


async def test_a_2xx_without_a_documented_field_is_a_failure_and_indeterminate(
    tmp_path: Path,
) -> None:
    """A server that answers money calls 201 but leaves out ``transaction_id``: each such
    sample is a failure naming the field, and the operation's outcome is unknown (the server
    may have moved the money), never acknowledged."""
    users = 0

    async def sign_up(request: web.Request) -> web.Response:
        nonlocal users
        users += 1
        return web.json_response({"user_id": f"u{users}", "token": f"t{users}"}, status=201)

    async def moved(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"replayed": False, "currency": body["currency"],
                                  "amount": body["amount"]}, status=201)  # fmt: skip

    async def balances(request: web.Request) -> web.Response:
        return web.json_response({"balances": [], "entries": []})

    server = web.Application()
    server.router.add_post("/api/users", sign_up)
    server.router.add_post("/api/admin/credit", moved)
    server.router.add_post("/api/wallet/withdraw", moved)
    server.router.add_get("/api/wallet/balances", balances)
    server.router.add_get("/api/wallet/transactions", balances)
    async with serving(server) as url:
        run = await run_locust(
            tmp_path, "-H", url, users=2, run_time="6s",
            env={ENV_ADMIN_TOKEN: ADMIN_TOKEN, ENV_MIX: "wallet", ENV_THINK_TIME: "0,0.05"},
        )  # fmt: skip
    assert run.returncode == 1, run.output  # Locust's own code when requests failed
    money = [s for s in run.samples if s.name in ("admin.credit", "wallet.withdraw")]
    assert {s.name for s in money} == {"admin.credit", "wallet.withdraw"}
    assert {(s.status, s.failed) for s in money} == {(201, True)}
    assert "without the documented field 'transaction_id'" in run.output
    operations = read_operations(tmp_path)
    assert {o.kind for o in operations} == {"admin.credit", "wallet.withdraw"}
    assert {o.outcome for o in operations} == {INDETERMINATE}
    # Those answered (not cut off by the end of the run) name the missing field.
    answered = [o for o in operations if o.completed]
    assert len(answered) == len(money)
    assert all("transaction_id" in (o.detail or "") for o in answered)


async def test_each_failure_keeps_its_identity_on_a_real_client(tmp_path: Path) -> None:
    """The recorder tells apart, from what a real Locust client met: the app's exact error
    shape, a body lacking part of it, a bare 500, a client timeout, a connection refused."""
    count = 0

    async def live(request: web.Request) -> web.StreamResponse:
        nonlocal count
        count += 1
        turn = count % 4
        if turn == 0:
            error = {"code": "pool_timeout", "message": "busy", "service": "p2p",
                     "request_id": "r-1"}  # fmt: skip
            return web.json_response({"error": error}, status=503)
        if turn == 1:
            error = {"code": "pool_timeout", "message": "busy", "service": "p2p"}
            return web.json_response({"error": error}, status=503)  # no request_id
        if turn == 2:
            return web.Response(status=500, text="Internal Server Error")
        await asyncio.sleep(CLIENT_TIMEOUT + 2)  # longer than the client waits
        return web.json_response({"status": "late"})

    server = web.Application()
    server.router.add_get("/health/live", live)
    async with serving(server) as url:
        # meanwhile, a run against a port nothing listens on: 3 s, not 1 (on a busy machine
        # Locust's start took the whole second once, and left no sample)
        run, refused = await asyncio.gather(
            # the timed-out request must start a client timeout before the run's end, and
            # Locust's start under make test's load took most of 3 s once
            run_locust(
                tmp_path, "-H", url, users=3,
                run_time=f"{CLIENT_TIMEOUT + 8:g}s", env={ENV_MIX: "health"},
            ),
            run_locust(
                tmp_path / "refused", "-H", f"http://127.0.0.1:{free_port()}", users=1,
                run_time="3s", env={ENV_MIX: "health"},
            ),
        )  # fmt: skip
    kinds = {
        (s.status, s.error_code, s.error_service, s.structured, s.transport_error)
        for s in run.samples
    }
    assert (503, "pool_timeout", "p2p", True, None) in kinds
    assert (503, "pool_timeout", "p2p", False, None) in kinds
    assert (500, None, None, False, None) in kinds
    assert (0, None, None, False, "timeout") in kinds
    assert kinds <= {
        (503, "pool_timeout", "p2p", True, None), (503, "pool_timeout", "p2p", False, None),
        (500, None, None, False, None), (0, None, None, False, "timeout"),
    }  # fmt: skip
    assert all(s.failed for s in run.samples)
    assert refused.samples
    assert {(s.status, s.transport_error) for s in refused.samples} == {(0, "connection")}


def sequences(run: LocustRun) -> dict[str, list[str]]:
    """What each simulated user did, in order: ``"<user> made"``, the names of its requests;
    ``"<user> sent"``, for each money-moving request, its kind and what the user chose to
    send (every field but identities: ids the app made and Idempotency-Keys, fresh in
    every run)."""
    found: dict[str, list[str]] = {}
    for sample in run.samples:  # by start: a user makes one request at a time
        found.setdefault(f"{sample.user} made", []).append(sample.name)
    for operation in read_operations(run.folder):  # by start too
        chosen = [f"{k}={v}" for k, v in sorted(operation.sent.items())
                  if k != "key" and not k.endswith("_id")]  # fmt: skip
        found.setdefault(f"{operation.user} sent", []).append(" ".join([operation.kind, *chosen]))
    return found


def agreed(first: list[str], second: list[str]) -> int:
    """How many requests two sequences share from their start."""
    return next(
        (n for n, (a, b) in enumerate(zip(first, second, strict=False)) if a != b),
        min(len(first), len(second)),
    )


async def test_one_seed_replays_what_each_user_does(
    app: RunningApp, payments_fake: PaymentsFake, tmp_path: Path
) -> None:
    """Two runs with one seed: every user makes the same requests and sends the same
    amounts, as far as both runs got (timing decides how far); another seed, other ones."""
    env = {ENV_ADMIN_TOKEN: ADMIN_TOKEN, ENV_PAYMENTS_URL: payments_fake.url,
           ENV_MIX: "deposits,wallet,p2p,swap,express", ENV_THINK_TIME: "0,0.05"}  # fmt: skip

    async def run(name: str, seed: int) -> dict[str, list[str]]:
        done = await run_locust(
            tmp_path / name, "-H", app_url(app), users=10, run_time="4s",
            env={**env, ENV_SEED: str(seed)},
        )  # fmt: skip
        assert_clean(done)
        return sequences(done)

    first, again, other = await run("first", 7), await run("again", 7), await run("other", 8)
    users = {f"{kind}#0.{n}" for kind in ("deposits", "wallet", "p2p", "swap", "express")
             for n in (0, 1)}  # fmt: skip
    assert {key.split()[0] for key in first} == users, sorted(first)
    assert set(again) == set(first) == set(other)
    compared = 0
    for key, done in first.items():
        shared = min(len(done), len(again[key]))
        assert agreed(done, again[key]) == shared, (key, done[:shared], again[key][:shared])
        # each user compared on a decision of its own at least (its first two requests,
        # signing up and being funded, are every user's), and all of them on many: a busy
        # machine once left one user three requests in a run
        assert shared >= (3 if key.endswith("made") else 1), (key, done, again[key])
        compared += shared if key.endswith("made") else 0
    assert compared >= 60, compared
    # Another seed, other decisions. A seed that did not reach the users would leave all
    # ten deciding alike; with it, most decide otherwise. A few may agree by chance: a
    # busy machine leaves a user time for a few decisions, and express buyers start alike
    # (the same liquidity, then one kind of request).
    same = [user for user in users
            if all(agreed(first[f"{user} {what}"], other[f"{user} {what}"])
                   == min(len(first[f"{user} {what}"]), len(other[f"{user} {what}"]))
                   for what in ("made", "sent"))]  # fmt: skip
    assert len(same) <= len(users) // 2, same


@pytest.mark.light
def test_the_locustfile_serves_locusts_web_ui(tmp_path: Path) -> None:
    """`locust -f load/locustfile.py`, as the README shows it: Locust's own web UI, with the
    harness's user kinds, ready to start a run (none is started here)."""

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    env[ENV_STATE_DIR] = str(tmp_path)  # no stack: a host is given instead
    with (tmp_path / "locust.log").open("w") as log:
        locust = subprocess.Popen(
            [str(Path(sys.executable).with_name("locust")), "-f", str(LOCUSTFILE),
             "--web-host", "127.0.0.1", "--web-port", str(port), "-H", "http://127.0.0.1:9"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def page() -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                return response.read().decode()
        except OSError:
            return None

    try:
        found = wait_until(page, timeout=30, interval=0.2)
    finally:
        os.killpg(locust.pid, signal.SIGINT)
        try:
            locust.wait(timeout=15)
        finally:
            if locust.poll() is None:
                os.killpg(locust.pid, signal.SIGKILL)
                locust.wait()
    assert "locust" in found.lower(), (tmp_path / "locust.log").read_text()
