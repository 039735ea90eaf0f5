"""The admin dashboard on a real PostgreSQL: its figures equal sums computed here, straight
from the ledger and the services' tables, after real traffic; the admin's role reads the
other services' schemas and writes none."""

from __future__ import annotations

import secrets
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import psycopg2
import psycopg2.errors
import pytest
from psycopg2 import sql

from isolation_harness.chaos.stack import postgres
from isolation_harness.reference_app.app_keys import WALLET
from isolation_harness.reference_app.migrate import migrate
from isolation_harness.reference_app.services.admin.domain import UNATTRIBUTED, attribute
from isolation_harness.reference_app.settings import SERVICES
from isolation_harness.topology.services import role_of
from tests.plugins.pg_cluster import PostgresServer
from tests.plugins.reference_app import (
    ADMIN_TOKEN,
    APP_DATABASE,
    PaymentsFake,
    PricesFake,
    RunningApp,
    StartApp,
)

OTHER_SCHEMAS = [s for s in SERVICES if s != "admin"]
REVENUE = "platform:revenue"
LIQUIDITY = "platform:liquidity"


@pytest.fixture
def prices(prices_fake: PricesFake) -> PricesFake:
    """The price-source fake the app fixtures already started (reached directly here)."""
    return prices_fake


@pytest.fixture
async def app(start_app: StartApp, prices: PricesFake) -> RunningApp:
    return await start_app(prices_url=prices.url)


@pytest.fixture
def superuser(app_database: str) -> Iterator[psycopg2.extensions.connection]:
    conn = postgres.connect(app_database)
    try:
        yield conn
    finally:
        conn.close()


def as_admin_role(pg: PostgresServer) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(
        f"host={pg.host} port={pg.port} user={role_of('admin')} dbname={APP_DATABASE}",
        connect_timeout=5,
    )
    conn.autocommit = True
    return conn


def rows(conn: psycopg2.extensions.connection, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(query, args)
        return cur.fetchall()


def db_now(conn: psycopg2.extensions.connection) -> datetime:
    value = rows(conn, "SELECT now()")[0][0]
    assert isinstance(value, datetime)
    return value


# -- real traffic ------------------------------------------------------------------------


async def finished_deposit(
    app: RunningApp, payments: PaymentsFake, token: str, currency: str, amount: str
) -> None:
    status, deposit = await app.call(
        "POST", "/api/nowpayments/create-deposit", token=token, key=secrets.token_hex(8),
        json={"currency": currency, "amount": amount},
    )  # fmt: skip
    assert status == 201, deposit
    await payments.progress(deposit["provider_payment_id"], "finished", through=True)
    status, seen = await app.call("GET", f"/api/nowpayments/deposits/{deposit['id']}", token=token)
    assert (status, seen["status"]) == (200, "finished"), seen


async def p2p_trade(app: RunningApp, seller: str, buyer: str, amount: str, end: str) -> Any:
    """A trade on a fresh offer, taken to ``end``: ``released`` or ``cancelled``."""
    status, offer = await app.call(
        "POST", "/api/p2p/offers", token=seller,
        json={"currency": "BTC", "fiat": "USD", "price": "30000", "amount": amount,
              "min_amount": amount, "max_amount": amount},
    )  # fmt: skip
    assert status == 201, offer
    status, trade = await app.call(
        "POST", "/api/p2p/trades", token=buyer, key=secrets.token_hex(8),
        json={"offer_id": offer["offer_id"], "amount": amount},
    )  # fmt: skip
    assert status == 201, trade
    path = f"/api/p2p/trades/{trade['trade_id']}"
    if end == "released":
        assert (await app.call("POST", f"{path}/paid", token=buyer))[0] == 200
        status, trade = await app.call("POST", f"{path}/release", token=seller)
    else:
        status, trade = await app.call("POST", f"{path}/cancel", token=buyer)
    assert (status, trade["state"]) == (200, end), trade
    return trade


async def swap(app: RunningApp, token: str, sell: str, buy: str, amount: str, execute: bool) -> Any:
    status, quote = await app.call(
        "POST", "/api/swap/quotes", token=token, json={"sell": sell, "buy": buy, "amount": amount}
    )
    assert status == 201, quote
    if execute:
        status, quote = await app.call(
            "POST", f"/api/swap/quotes/{quote['quote_id']}/execute", token=token,
            key=secrets.token_hex(8),
        )  # fmt: skip
        assert (status, quote["state"]) == (201, "executed"), quote
    return quote


async def dashboard(app: RunningApp, start: datetime, end: datetime) -> Any:
    query = urlencode({"from": start.isoformat(), "to": end.isoformat()})
    status, body = await app.call("GET", f"/api/admin/dashboard?{query}", token=ADMIN_TOKEN)
    assert status == 200, body
    return body


# -- sums computed here, from the tables --------------------------------------------------


def fees_from_ledger(
    conn: psycopg2.extensions.connection, start: datetime, end: datetime
) -> dict[str, dict[str, dict[str, Any]]]:
    """Credits to the revenue account in [start, end), by the service named in the reference."""
    found = rows(
        conn,
        "SELECT t.id, t.reference, e.currency, e.amount FROM wallet.entries e "
        "JOIN wallet.accounts a ON a.id = e.account_id "
        "JOIN wallet.transactions t ON t.id = e.transaction_id "
        "WHERE a.owner = %s AND a.kind = 'system' AND e.amount > 0 "
        "AND e.created_at >= %s AND e.created_at < %s",
        REVENUE, start, end,
    )  # fmt: skip
    sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    transactions: dict[str, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for transaction_id, reference, currency, amount in found:
        service = {"p2p:trade": "p2p", "swap:quote": "swap"}[":".join(reference.split(":")[:2])]
        sums[service][currency] += amount
        transactions[service][currency].add(transaction_id)
    return {
        service: {
            c: {
                "fees": format(total.normalize(), "f"),
                "transactions": len(transactions[service][c]),
            }
            for c, total in by_currency.items()
        }
        for service, by_currency in sums.items()
    }


def counts_from_tables(
    conn: psycopg2.extensions.connection, start: datetime, end: datetime
) -> dict[str, dict[str, int]]:
    where = "WHERE created_at >= %s AND created_at < %s GROUP BY 1"
    return {
        "deposits": dict(rows(conn, f"SELECT status, count(*) FROM deposits.deposits {where}",
                              start, end)),
        "p2p_trades": dict(rows(conn, f"SELECT state, count(*) FROM p2p.trades {where}",
                                start, end)),
        "swap_quotes": dict(rows(
            conn,
            "SELECT CASE WHEN state = 'open' AND expires_at <= now() THEN 'expired' "
            f"ELSE state END, count(*) FROM swap.quotes {where}", start, end,
        )),
    }  # fmt: skip


def liquidity_from_accounts(conn: psycopg2.extensions.connection) -> dict[str, Decimal]:
    return dict(
        rows(
            conn,
            "SELECT currency, balance FROM wallet.accounts WHERE owner = %s AND kind = 'system'",
            LIQUIDITY,
        )
    )


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {state: n for state, n in counts.items() if n}


# -- the figures ---------------------------------------------------------------------------


async def test_dashboard_figures_equal_sums_from_the_ledger(
    app: RunningApp, payments_fake: PaymentsFake, superuser: psycopg2.extensions.connection
) -> None:
    start = db_now(superuser)

    _, depositor = await app.new_user()
    await finished_deposit(app, payments_fake, depositor, "BTC", "0.5")
    await finished_deposit(app, payments_fake, depositor, "USDT", "125.25")
    status, waiting = await app.call(
        "POST", "/api/nowpayments/create-deposit", token=depositor, key=secrets.token_hex(8),
        json={"currency": "ETH", "amount": "2"},
    )  # fmt: skip
    assert status == 201, waiting

    _, seller = await app.new_user(funds={"BTC": "2"})
    _, buyer = await app.new_user()
    trades = [
        await p2p_trade(app, seller, buyer, "0.2", "released"),
        await p2p_trade(app, seller, buyer, "0.35", "released"),
        await p2p_trade(app, seller, buyer, "0.1", "cancelled"),
    ]

    _, swapper = await app.new_user(funds={"BTC": "1", "USDT": "5000"})
    quotes = [
        await swap(app, swapper, "BTC", "USDT", "0.1", execute=True),
        await swap(app, swapper, "USDT", "ETH", "1000", execute=True),
        await swap(app, swapper, "BTC", "ETH", "0.05", execute=False),
    ]
    end = db_now(superuser)

    body = await dashboard(app, start, end)

    # What the traffic says it paid in fees…
    p2p_fees = sum(Decimal(t["fee"]) for t in trades if t["state"] == "released")
    assert p2p_fees == Decimal("0.0055")  # 1% of 0.2 and of 0.35
    # a swap's revenue: its fee, in the currency sold, and its spread, in the one bought
    swap_fees: dict[str, Decimal] = defaultdict(Decimal)
    for quote in quotes[:2]:
        swap_fees[quote["fee_currency"]] += Decimal(quote["fee"])
        swap_fees[quote["spread_currency"]] += Decimal(quote["spread_amount"])
    assert all(swap_fees.values())
    by_service = body["revenue"]["by_service"]
    assert by_service["p2p"] == {"BTC": {"fees": "0.0055", "transactions": 2}}
    assert {c: Decimal(v["fees"]) for c, v in by_service["swap"].items()} == swap_fees
    assert by_service["express"] == {}
    assert UNATTRIBUTED not in by_service
    # …equals what the ledger says, summed here.
    ledger = fees_from_ledger(superuser, start, end)
    assert {s: f for s, f in by_service.items() if f} == ledger
    expected_totals: dict[str, Decimal] = defaultdict(Decimal, swap_fees)
    expected_totals["BTC"] += p2p_fees
    assert {c: Decimal(v) for c, v in body["revenue"]["totals"].items()} == expected_totals
    assert all(isinstance(v, str) for v in body["revenue"]["totals"].values())

    counts = body["counts"]
    assert nonzero(counts["deposits"]) == {"finished": 2, "waiting": 1}
    assert nonzero(counts["p2p_trades"]) == {"released": 2, "cancelled": 1}
    assert nonzero(counts["swap_quotes"]) == {"executed": 2, "open": 1}
    assert {t: nonzero(c) for t, c in counts.items()} == counts_from_tables(superuser, start, end)
    # Every known state is listed, those without rows as 0.
    assert counts["deposits"]["refunded"] == 0
    assert counts["p2p_trades"]["disputed"] == 0

    liquidity = body["liquidity"]
    assert liquidity["account"] == LIQUIDITY
    assert set(liquidity["balances"]) >= {"BTC", "ETH", "USDT", "USD"}
    held = liquidity_from_accounts(superuser)
    for currency, balance in liquidity["balances"].items():
        assert Decimal(balance) == held.get(currency, Decimal(0)), currency

    assert body["period"] == {"from": start.isoformat(), "to": end.isoformat()}
    assert set(body["pools"]) == set(SERVICES)
    assert body["pools"]["admin"]["in_use"] >= 0


async def test_the_period_bounds_the_figures(
    app: RunningApp, superuser: psycopg2.extensions.connection
) -> None:
    _, seller = await app.new_user(funds={"BTC": "1"})
    _, buyer = await app.new_user()
    start = db_now(superuser)
    await p2p_trade(app, seller, buyer, "0.3", "released")
    middle = db_now(superuser)
    await p2p_trade(app, seller, buyer, "0.1", "released")
    end = db_now(superuser)

    first = await dashboard(app, start, middle)
    second = await dashboard(app, middle, end)
    both = await dashboard(app, start, end)
    assert first["revenue"]["by_service"]["p2p"] == {"BTC": {"fees": "0.003", "transactions": 1}}
    assert second["revenue"]["by_service"]["p2p"] == {"BTC": {"fees": "0.001", "transactions": 1}}
    assert both["revenue"]["by_service"]["p2p"] == {"BTC": {"fees": "0.004", "transactions": 2}}
    assert nonzero(first["counts"]["p2p_trades"]) == {"released": 1}
    assert nonzero(both["counts"]["p2p_trades"]) == {"released": 2}
    for body, (a, b) in ((first, (start, middle)), (both, (start, end))):
        assert body["revenue"]["by_service"]["p2p"] == fees_from_ledger(superuser, a, b)["p2p"]


async def test_liquidity_is_the_liquidity_account_balance(
    app: RunningApp, superuser: psycopg2.extensions.connection
) -> None:
    """Funded through the wallet's own movements, and given back: other tests see none of it."""
    wallet = app.app[WALLET]
    user, _ = await app.new_user(funds={"ETH": "3.5"})
    before = liquidity_from_accounts(superuser).get("ETH", Decimal(0))
    key = secrets.token_hex(8)
    await wallet.debit(
        user, "ETH", Decimal("3.5"), sink=LIQUIDITY, kind="liquidity_funding",
        idempotency_key=f"test-liquidity-in:{key}",
    )  # fmt: skip
    try:
        start = db_now(superuser)
        body = await dashboard(app, start - timedelta(days=1), start)
        assert Decimal(body["liquidity"]["balances"]["ETH"]) == before + Decimal("3.5")
        held = liquidity_from_accounts(superuser)
        for currency, balance in body["liquidity"]["balances"].items():
            assert Decimal(balance) == held.get(currency, Decimal(0)), currency
    finally:
        await wallet.credit(
            user, "ETH", Decimal("3.5"), source=LIQUIDITY, kind="liquidity_return",
            idempotency_key=f"test-liquidity-out:{key}",
        )  # fmt: skip
    assert liquidity_from_accounts(superuser)["ETH"] == before


@pytest.mark.parametrize(
    ("kind", "reference", "service"),
    [
        ("escrow_release", "p2p:trade:8c3e…", "p2p"),
        ("swap", "swap:quote:1f0a…", "swap"),
        ("express_buy", "express:order:77b1…", "express"),
        ("express_buy", None, "express"),
        ("escrow_release", None, "p2p"),
        ("swap", "", "swap"),
        ("funding", None, UNATTRIBUTED),
        ("adjustment", "manual:42", UNATTRIBUTED),
    ],
)
def test_fee_attribution(kind: str, reference: str | None, service: str) -> None:
    """The mapping the dashboard documents (a pure function: no database)."""
    assert attribute(kind, reference) == service


# -- the admin's role ---------------------------------------------------------------------


def test_the_admin_role_reads_every_other_schema(
    pg_server: PostgresServer, app_database: str
) -> None:
    conn = as_admin_role(pg_server)
    try:
        tables = rows(
            conn,
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY(%s)",
            OTHER_SCHEMAS,
        )
        assert {schema for schema, _ in tables} >= {"deposits", "wallet", "p2p", "swap"}
        for schema, table in tables:
            rows(conn, sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table)).as_string(conn))  # fmt: skip
    finally:
        conn.close()


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO wallet.transactions (kind, reference) VALUES ('admin_wrote', NULL)",
        "UPDATE wallet.accounts SET balance = balance + 1 WHERE false",
        "DELETE FROM deposits.deposits WHERE false",
        "INSERT INTO p2p.trade_events (trade_id, state, actor) "
        "VALUES (gen_random_uuid(), 'open', 'admin')",
        "UPDATE swap.quotes SET state = 'expired' WHERE false",
        "TRUNCATE deposits.ipn_events",
        "CREATE TABLE wallet.admin_was_here (id int)",
    ],
)
def test_the_admin_role_cannot_write(
    pg_server: PostgresServer, app_database: str, statement: str
) -> None:
    conn = as_admin_role(pg_server)
    try:
        with conn.cursor() as cur:
            # Its sessions are read-only by default…
            with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
                cur.execute(statement)
            # …and even with that undone, it has no privilege to write.
            cur.execute("SET default_transaction_read_only = off")
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(statement)
    finally:
        conn.close()


def test_the_admin_role_holds_no_write_privilege_anywhere(
    pg_server: PostgresServer, app_database: str
) -> None:
    conn = as_admin_role(pg_server)
    try:
        writable = rows(
            conn,
            "SELECT schemaname, tablename, p FROM pg_tables, "
            "unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p "
            "WHERE schemaname = ANY(%s) "
            "AND has_table_privilege(format('%%I.%%I', schemaname, tablename), p)",
            OTHER_SCHEMAS,
        )
        assert writable == []
        creatable = rows(
            conn,
            "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s) "
            "AND has_schema_privilege(nspname, 'CREATE')",
            OTHER_SCHEMAS,
        )
        assert creatable == []
    finally:
        conn.close()


def test_the_admin_role_reads_nothing_it_was_not_granted(
    pg_server: PostgresServer, superuser: psycopg2.extensions.connection
) -> None:
    schema = f"unshared_{uuid.uuid4().hex[:8]}"
    with superuser.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
        cur.execute(f"CREATE TABLE {schema}.secrets (id int)")
        cur.execute("CREATE TABLE IF NOT EXISTS public.admin_probe (id int)")
    conn = as_admin_role(pg_server)
    try:
        with conn.cursor() as cur:
            for table in (f"{schema}.secrets", "public.admin_probe", "pg_authid"):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(f"SELECT count(*) FROM {table}")
    finally:
        conn.close()
        with superuser.cursor() as cur:
            cur.execute(f"DROP SCHEMA {schema} CASCADE")
            cur.execute("DROP TABLE IF EXISTS public.admin_probe")


def test_grants_are_renewed_on_every_run_and_cover_new_tables(
    pg_server: PostgresServer, app_database: str, superuser: psycopg2.extensions.connection
) -> None:
    table = f"later_{uuid.uuid4().hex[:8]}"
    with superuser.cursor() as cur:
        cur.execute(f"REVOKE SELECT ON wallet.users FROM {role_of('admin')}")
        # A table a later migration of the wallet would create, as the wallet's role.
        cur.execute("BEGIN")
        cur.execute(f"SET LOCAL ROLE {role_of('wallet')}")
        cur.execute(f"CREATE TABLE wallet.{table} (id int)")
        cur.execute("COMMIT")
    conn = as_admin_role(pg_server)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM wallet.{table}")  # default privileges
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("SELECT count(*) FROM wallet.users")
        assert migrate(app_database, SERVICES, legacy=True) == []
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM wallet.users")
    finally:
        conn.close()
        with superuser.cursor() as cur:
            cur.execute(f"DROP TABLE wallet.{table}")
            cur.execute(f"GRANT SELECT ON wallet.users TO {role_of('admin')}")
