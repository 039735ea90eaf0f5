"""One schema and one role per service: each role reaches its own tables only."""

from __future__ import annotations

import psycopg2
import pytest

from isolation_harness.chaos.stack import postgres
from isolation_harness.reference_app.migrate import migrate, migrations_of
from isolation_harness.reference_app.settings import SERVICES
from isolation_harness.topology.services import LEGACY_ROLE, role_of
from tests.plugins.pg_cluster import PostgresServer
from tests.plugins.reference_app import APP_DATABASE

TABLES = {"deposits": "deposits", "wallet": "accounts", "p2p": "trades", "swap": "quotes"}


def as_role(pg: PostgresServer, role: str) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(
        f"host={pg.host} port={pg.port} user={role} dbname={APP_DATABASE}", connect_timeout=5
    )
    conn.autocommit = True
    return conn


@pytest.mark.parametrize("service", TABLES)
def test_a_service_role_reaches_only_its_own_schema(
    pg_server: PostgresServer, app_database: str, service: str
) -> None:
    conn = as_role(pg_server, role_of(service))
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT count(*) FROM {service}.{TABLES[service]}")
            for other in TABLES:
                if other == service:
                    continue
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(f"SELECT count(*) FROM {other}.{TABLES[other]}")
            cur.execute("SHOW search_path")
            assert cur.fetchone() == (service,)
            cur.execute("SELECT current_setting('application_name')")
    finally:
        conn.close()


def test_the_legacy_role_reaches_every_schema(pg_server: PostgresServer, app_database: str) -> None:
    conn = as_role(pg_server, LEGACY_ROLE)
    try:
        with conn.cursor() as cur:
            for service, table in TABLES.items():
                cur.execute(f"SELECT count(*) FROM {service}.{table}")
    finally:
        conn.close()


def roles(app_database: str) -> set[str]:
    conn = postgres.connect(app_database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT rolname FROM pg_roles")
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


def test_the_legacy_role_exists_only_while_the_legacy_design_runs(
    pg_server: PostgresServer, app_database: str
) -> None:
    """Migrated for the isolated design, the database has no role reaching every service's
    data; migrated for the legacy design, it has (and the next isolated start drops it)."""
    try:
        migrate(app_database, SERVICES, legacy=False)
        assert LEGACY_ROLE not in roles(app_database)
        assert {role_of(s) for s in SERVICES} <= roles(app_database)
        with pytest.raises(psycopg2.OperationalError, match=LEGACY_ROLE):
            as_role(pg_server, LEGACY_ROLE)
        migrate(app_database, SERVICES, legacy=True)
        test_the_legacy_role_reaches_every_schema(pg_server, app_database)
        migrate(app_database, SERVICES, legacy=False)
        assert LEGACY_ROLE not in roles(app_database)
    finally:  # the other tests of this worker start either design on this database
        migrate(app_database, SERVICES, legacy=True)


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_its_schema_and_role(
    pg_server: PostgresServer, app_database: str, service: str
) -> None:
    conn = as_role(pg_server, role_of(service))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = %s",
                        (service,))  # fmt: skip
            assert cur.fetchone() == (role_of(service),)
            cur.execute("SHOW search_path")
            assert cur.fetchone() == (service,)
    finally:
        conn.close()


def test_migrations_are_idempotent(pg_server: PostgresServer, app_database: str) -> None:
    assert migrate(app_database, SERVICES, legacy=True) == []
    conn = postgres.connect(app_database)
    try:
        with conn.cursor() as cur:
            for service in SERVICES:
                cur.execute(f"SELECT count(*) FROM {service}.schema_migrations")
                assert cur.fetchone()[0] == len(migrations_of(service))  # type: ignore[index]
    finally:
        conn.close()
