"""The invariants oracle finds each kind of violation, and none on consistent data."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import psycopg2
import pytest

from isolation_harness.chaos.invariants import Facts, InvariantResult, check_invariants
from isolation_harness.chaos.stack import postgres
from isolation_harness.load.operations import ACKNOWLEDGED, Operation
from isolation_harness.reference_app.migrate import migrate
from isolation_harness.reference_app.settings import SERVICES
from tests.plugins.pg_cluster import PostgresServer

ALL = [
    "no_operation_lost", "ledger_balanced", "no_negative_balance",
    "escrow_consistent", "connections_return_to_baseline",
]  # fmt: skip


@pytest.fixture
def scratch(pg_server: PostgresServer) -> Iterator[str]:
    """A migrated database of this test's own, which it may corrupt."""
    name = f"inv_{uuid.uuid4().hex[:10]}"
    postgres.ensure_database(pg_server.dsn(), name)
    dsn = pg_server.dsn(name)
    migrate(dsn, SERVICES, legacy=True)
    yield dsn
    postgres.drop_database(pg_server.dsn(), name)


def sql(dsn: str, *statements: str) -> None:
    conn = postgres.connect(dsn)
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def post(dsn: str, kind: str, reference: str, legs: list[tuple[str, str, str, str]]) -> int:
    """A ledger transaction as the wallet writes it: entries plus balance updates."""
    conn = postgres.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO wallet.transactions (kind, reference, idempotency_key) "
                "VALUES (%s, %s, %s) RETURNING id",
                (kind, reference, f"{kind}:{reference}:{uuid.uuid4()}"),
            )
            tid = cur.fetchone()[0]  # type: ignore[index]
            for owner, currency, account_kind, amount in legs:
                cur.execute(
                    "INSERT INTO wallet.accounts (owner, currency, kind) VALUES (%s, %s, %s) "
                    "ON CONFLICT DO NOTHING",
                    (owner, currency, account_kind),
                )
                cur.execute(
                    "UPDATE wallet.accounts SET balance = balance + %s "
                    "WHERE owner = %s AND currency = %s AND kind = %s RETURNING id",
                    (Decimal(amount), owner, currency, account_kind),
                )
                aid = cur.fetchone()[0]  # type: ignore[index]
                cur.execute(
                    "INSERT INTO wallet.entries (transaction_id, account_id, currency, amount) "
                    "VALUES (%s, %s, %s, %s)",
                    (tid, aid, currency, Decimal(amount)),
                )
            return int(tid)
    finally:
        conn.close()


def consistent_history(dsn: str) -> tuple[str, str, str]:
    """A credit, an escrow lock released to a buyer and one unlocked, as the app would write."""
    seller, buyer = str(uuid.uuid4()), str(uuid.uuid4())
    post(dsn, "credit", "c1", [("system:deposits", "BTC", "system", "-2"),
                               (seller, "BTC", "available", "2")])  # fmt: skip
    for ref, closing in (("trade:1", "escrow_release"), ("trade:2", "escrow_unlock")):
        post(dsn, "escrow_lock", ref, [(seller, "BTC", "available", "-0.5"),
                                       (seller, "BTC", "escrow", "0.5")])  # fmt: skip
        if closing == "escrow_release":
            post(dsn, closing, ref, [(seller, "BTC", "escrow", "-0.5"),
                                     (buyer, "BTC", "available", "0.495"),
                                     ("platform:revenue", "BTC", "system", "0.005")])  # fmt: skip
            state, to = "released", f"'{buyer}'"
        else:
            post(dsn, closing, ref, [(seller, "BTC", "escrow", "-0.5"),
                                     (seller, "BTC", "available", "0.5")])  # fmt: skip
            state, to = "unlocked", "NULL"
        sql(dsn, f"INSERT INTO wallet.escrow_locks (reference, owner, currency, amount, state, "
                 f"released_to, closed_at) VALUES ('{ref}', '{seller}', 'BTC', 0.5, '{state}', "
                 f"{to}, now())")  # fmt: skip
    post(dsn, "escrow_lock", "trade:3", [(seller, "BTC", "available", "-0.25"),
                                         (seller, "BTC", "escrow", "0.25")])  # fmt: skip
    sql(dsn, "INSERT INTO wallet.escrow_locks (reference, owner, currency, amount, state) "
             f"VALUES ('trade:3', '{seller}', 'BTC', 0.25, 'held')")  # fmt: skip
    deposit = str(uuid.uuid4())
    sql(
        dsn,
        "INSERT INTO deposits.deposits (id, user_id, currency, amount, status, idempotency_key) "
        f"VALUES ('{deposit}', '{seller}', 'BTC', 1, 'waiting', 'k')",
    )
    return seller, buyer, deposit


def by_name(results: list[InvariantResult]) -> dict[str, InvariantResult]:
    return {r.name: r for r in results}


def check(dsn: str, operations: list[Operation] | None = None) -> dict[str, InvariantResult]:
    facts = Facts(None, operations=operations or [], capacity={"deposits": 5})
    return by_name(check_invariants(dsn, ALL, facts))


def created(user: str, key: str, amount: str) -> Operation:
    """The client's record of an acknowledged deposit creation."""
    sent = {"user_id": user, "key": key, "currency": "BTC", "amount": amount}
    return Operation(uuid.uuid4().hex, "deposit.create", sent, ACKNOWLEDGED, status=201)


def test_consistent_data_passes_every_invariant(scratch: str) -> None:
    seller, _, _deposit = consistent_history(scratch)
    results = check(scratch, [created(seller, "k", "1")])
    assert set(results) == set(ALL)
    assert all(r.passed for r in results.values()), {n: r.violations for n, r in results.items()}
    assert results["escrow_consistent"].checked == 3
    assert results["no_operation_lost"].checked == 1


def test_a_lost_acknowledged_deposit_is_found(scratch: str) -> None:
    seller, _, deposit = consistent_history(scratch)
    operations = [
        created(seller, "gone", "1"),
        created(seller, "k", "2"),  # acknowledged with another amount than stored
    ]
    result = check(scratch, operations)["no_operation_lost"]
    assert not result.passed
    assert result.counts["lost"] == 2
    assert any("key=gone" in v for v in result.violations)
    assert any(deposit in v and "amount 1" in v for v in result.violations)


def test_an_unbalanced_ledger_is_found(scratch: str) -> None:
    consistent_history(scratch)
    tid = post(scratch, "bug", "x", [(str(uuid.uuid4()), "ETH", "available", "1")])
    result = check(scratch)["ledger_balanced"]
    assert not result.passed
    assert any(f"transaction {tid} does not balance" in v for v in result.violations)
    assert any("the ledger does not balance in ETH" in v for v in result.violations)


def test_a_balance_that_disagrees_with_its_entries_is_found(scratch: str) -> None:
    seller, _, _ = consistent_history(scratch)
    sql(scratch, f"UPDATE wallet.accounts SET balance = balance + 1 WHERE owner = '{seller}' "
                 "AND kind = 'available'")  # fmt: skip
    result = check(scratch)["ledger_balanced"]
    assert not result.passed
    assert any("its entries sum to" in v for v in result.violations)


def test_a_negative_balance_is_found(scratch: str) -> None:
    seller, _, _ = consistent_history(scratch)
    sql(
        scratch,
        "ALTER TABLE wallet.accounts DROP CONSTRAINT no_overdraft",
        f"UPDATE wallet.accounts SET balance = -1 WHERE owner = '{seller}' AND kind = 'available'",
    )
    result = check(scratch)["no_negative_balance"]
    assert not result.passed
    assert "is negative: -1" in result.violations[0]


def test_escrow_released_and_unlocked_both_is_found(scratch: str) -> None:
    seller, _buyer, _ = consistent_history(scratch)
    # trade:1 was released; now also "unlocked": money paid out twice.
    post(scratch, "escrow_unlock", "trade:1", [("system:bug", "BTC", "system", "-0.5"),
                                                (seller, "BTC", "available", "0.5")])  # fmt: skip
    result = check(scratch)["escrow_consistent"]
    assert not result.passed
    assert any("trade:1 is released but was closed by" in v for v in result.violations)


def test_a_held_escrow_without_funds_is_found(scratch: str) -> None:
    seller, _, _ = consistent_history(scratch)
    sql(scratch, "INSERT INTO wallet.escrow_locks (reference, owner, currency, amount, state) "
                 f"VALUES ('trade:ghost', '{seller}', 'BTC', 1, 'held')")  # fmt: skip
    violations = check(scratch)["escrow_consistent"].violations
    assert any("trade:ghost has no locking transaction" in v for v in violations)
    assert any("held locks sum to" in v for v in violations)


def test_a_connection_stuck_in_a_transaction_is_found(
    pg_server: PostgresServer, scratch: str
) -> None:
    params = psycopg2.extensions.parse_dsn(scratch)
    stuck = psycopg2.connect(**params, application_name="deposits")
    try:
        with stuck.cursor() as cur:
            cur.execute("SELECT 1")  # opens a transaction and leaves it open
        result = check(scratch)["connections_return_to_baseline"]
        assert not result.passed
        assert "idle in transaction" in result.violations[0]
    finally:
        stuck.close()
    assert check(scratch)["connections_return_to_baseline"].passed


def test_a_statement_that_ends_soon_is_not_a_connection_left_behind(scratch: str) -> None:
    """The background service's periodic jobs run statements, load or not: one caught
    running at the check is work going on (it used to fail a correct build's run)."""
    params = psycopg2.extensions.parse_dsn(scratch)
    busy = psycopg2.connect(**params, application_name="deposits")
    busy.autocommit = True
    running = threading.Thread(target=lambda: busy.cursor().execute("SELECT pg_sleep(0.8)"))
    try:
        running.start()
        deadline = time.monotonic() + 5
        while "active" not in states(scratch) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "active" in states(scratch), "the statement never ran"
        assert check(scratch)["connections_return_to_baseline"].passed
    finally:
        running.join()
        busy.close()


def states(dsn: str) -> list[str]:
    conn = postgres.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT state FROM pg_stat_activity WHERE application_name = 'deposits'")
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def test_more_connections_than_the_pools_hold_is_found(scratch: str) -> None:
    params = psycopg2.extensions.parse_dsn(scratch)
    extra = [psycopg2.connect(**params, application_name="deposits") for _ in range(6)]
    try:
        result = check(scratch)["connections_return_to_baseline"]
        assert not result.passed
        assert "more than its pools may hold (5)" in result.violations[0]
    finally:
        for conn in extra:
            conn.close()
