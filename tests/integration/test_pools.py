"""Each service's pool as PostgreSQL sees it: its own role, named after the service, its
statement time limit, its minimum size; and a statement over the limit ends as that
service's 503, the connection still usable."""

from __future__ import annotations

import decimal
import logging
from typing import Any

import psycopg2
import pytest

from isolation_harness.reference_app.app_keys import DATABASES, P2P
from isolation_harness.reference_app.db import ServiceDatabase
from isolation_harness.reference_app.errors import DependencyUnavailable, ServiceFailed
from isolation_harness.reference_app.settings import SERVICES
from isolation_harness.topology.services import role_of
from tests.plugins.reference_app import StartApp

POOL = {"min_size": 2, "max_size": 4, "statement_timeout_ms": 700}


async def test_each_pool_connects_as_its_service(start_app: StartApp, app_database: str) -> None:
    api = await start_app(pool=POOL)
    manager = api.app[DATABASES]
    for service in SERVICES:
        async with manager.for_service(service).cursor() as cur:
            await cur.execute(
                "SELECT current_user, current_setting('application_name'),"
                " current_setting('statement_timeout')"
            )
            assert await cur.fetchone() == (role_of(service), service, "700ms")
    with psycopg2.connect(app_database) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT application_name, usename, count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = ANY(%s)"
            " GROUP BY 1, 2",
            (list(SERVICES),),
        )
        seen = {name: (user, count) for name, user, count in cur.fetchall()}
    conn.close()
    # Each pool opened its minimum on first use, under its own role and name.
    assert seen == {s: (role_of(s), POOL["min_size"]) for s in SERVICES}


async def test_a_statement_over_the_limit_is_the_services_503(start_app: StartApp) -> None:
    api = await start_app(pool=POOL)
    db = api.app[DATABASES].for_service("p2p")
    with pytest.raises(psycopg2.errors.QueryCanceled):
        async with db.cursor() as cur:
            await cur.execute("SELECT pg_sleep(5)")
    async with db.cursor() as cur:  # the pool still serves
        await cur.execute("SELECT 1")
        assert await cur.fetchone() == (1,)

    p2p = api.app[P2P]

    async def slow() -> None:
        async with p2p.db.cursor() as cur:
            await cur.execute("SELECT pg_sleep(5)")

    with pytest.raises(DependencyUnavailable) as raised:
        await p2p.boundary.call(slow)
    assert raised.value.service == "p2p"
    assert raised.value.message == "p2p: a statement ran past its time limit"  # not the driver's


BLOCKED = [
    # (which limit ends the statement, app settings, 503 code, message part)
    ("statement_timeout", {"pool": {**POOL, "acquire_timeout": 2.0}}, "statement_timeout",
     "wallet: a statement ran past its time limit"),
    ("driver", {"pool": {**POOL, "statement_timeout_ms": 5000, "acquire_timeout": 0.7}},
     "timeout", "its database did not answer in time"),
    ("service", {"pool": {**POOL, "statement_timeout_ms": 5000}, "service_timeout": 0.7},
     "timeout", "no answer within 0.7 s"),
]  # fmt: skip


@pytest.mark.parametrize(("limit", "settings", "code", "message"), BLOCKED,
                         ids=[b[0] for b in BLOCKED])  # fmt: skip
async def test_a_request_blocked_past_a_limit_gets_the_services_503(
    start_app: StartApp,
    app_database: str,
    caplog: pytest.LogCaptureFixture,
    limit: str,
    settings: dict[str, Any],
    code: str,
    message: str,
) -> None:
    """A withdrawal blocked by a row lock held elsewhere ends at the first limit it meets:
    PostgreSQL's ``statement_timeout``, the driver's operation timeout (aiopg's, the pool's
    acquire timeout), or the service's time limit. Each is wallet's 503 saying which, and
    nothing moved; the same request goes through once the lock is gone. Nothing is logged
    as an unhandled error on the way."""
    api = await start_app(**settings)
    user, token = await api.new_user({"USDT": "10"})
    blocker = psycopg2.connect(app_database)
    try:
        with blocker.cursor() as cur:  # a transaction left open, holding the user's row
            cur.execute("SELECT 1 FROM wallet.accounts WHERE owner = %s FOR UPDATE", (str(user),))
        status, body = await api.call(
            "POST", "/api/wallet/withdraw", token=token, key="blocked",
            json={"currency": "USDT", "amount": "4"},
        )  # fmt: skip
    finally:
        blocker.rollback()
        blocker.close()
    assert status == 503, body
    assert (body["error"]["service"], body["error"]["code"]) == ("wallet", code)
    assert message in body["error"]["message"]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    status, balances = await api.call("GET", "/api/wallet/balances", token=token)
    assert balances["balances"][0]["available"] == "10"
    status, body = await api.call(
        "POST", "/api/wallet/withdraw", token=token, key="blocked",
        json={"currency": "USDT", "amount": "4"},
    )  # fmt: skip
    assert status == 201, body
    status, balances = await api.call("GET", "/api/wallet/balances", token=token)
    assert balances["balances"][0]["available"] == "6"


REFUSED = [
    # (statement, the driver's class, the kind the 503 says)
    ("SELECT 1 / 0", psycopg2.DataError, "data error"),
    ("SELECT '1e30'::numeric(38, 18)", psycopg2.DataError, "data error"),
    ("DO $$ BEGIN RAISE EXCEPTION 'dup' USING ERRCODE = 'unique_violation'; END $$",
     psycopg2.IntegrityError, "integrity error"),
    ("DO $$ BEGIN RAISE EXCEPTION 'bad' USING ERRCODE = 'internal_error'; END $$",
     psycopg2.InternalError, "internal error"),
    ("SELECT no_such_column FROM p2p.offers", psycopg2.ProgrammingError, "statement error"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("sql", "driver_error", "kind"),
    REFUSED,
    ids=["division", "overflow", "integrity", "internal", "statement"],
)
async def test_a_statement_the_database_refuses_is_the_services_503(
    start_app: StartApp, sql: str, driver_error: type[Exception], kind: str
) -> None:
    """Not only a lost connection: every driver error is the service's structured 503, saying
    the kind of refusal and never the database's own words; the legacy design lets it out."""
    api = await start_app(pool=POOL)
    p2p = api.app[P2P]
    with pytest.raises(DependencyUnavailable) as raised:
        await p2p.boundary.call(_execute, p2p.db, sql)
    assert (raised.value.status, raised.value.service) == (503, "p2p")
    assert raised.value.code == "database_error"
    assert raised.value.message == f"p2p: the database refused a statement ({kind})"
    assert isinstance(raised.value.__cause__, driver_error)  # the log gets the driver's text
    legacy = (await start_app("legacy", pool=POOL)).app[P2P]
    with pytest.raises(driver_error):
        await legacy.boundary.call(_execute, legacy.db, sql)


async def _execute(db: ServiceDatabase, sql: str) -> None:
    async with db.cursor() as cur:
        await cur.execute(sql)


async def test_a_failed_calculation_is_the_services_503(start_app: StartApp) -> None:
    api = await start_app(pool=POOL)
    p2p = api.app[P2P]

    async def overflowing() -> decimal.Decimal:
        return decimal.Decimal("1e30").quantize(decimal.Decimal("1e-18"))  # 49 digits > 28

    with pytest.raises(ServiceFailed) as raised:
        await p2p.boundary.call(overflowing)
    assert (raised.value.status, raised.value.service) == (503, "p2p")
    assert raised.value.code == "calculation_failed"
    assert raised.value.message == "p2p: a calculation failed (InvalidOperation)"
