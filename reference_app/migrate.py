"""Roles, schemas and migrations: one schema and one role per service, applied idempotently.

Run as a superuser before the app serves (once, not per worker process). Each service's
role owns its schema and nothing else. The legacy design's role, a member of them all, exists
only while the legacy design is what runs: migrating for the isolated design drops it (a
role that can read and write every service's data is exactly what isolation removes).
Migrations are the ``NNN_name.sql`` files of ``reference_app/migrations/<service>/``,
applied in order as the service's role and recorded in ``<schema>.schema_migrations``.

The admin dashboard reads every other service's figures, so once all are migrated its role
is given read access to their schemas (``USAGE`` and ``SELECT``, never a write privilege),
again on every run so that tables added since are covered, and its sessions default to
read-only transactions.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources

import psycopg2
from psycopg2 import sql

from isolation_harness.topology.services import LEGACY_ROLE, role_of

#: the service whose role may read (only read) the other services' schemas
READER_SERVICE = "admin"
_LOCK_KEY = 715_304_221  # pg_advisory_lock key serialising concurrent migrations


def migrations_of(service: str) -> list[tuple[str, str]]:
    """``(name, sql)`` of the service's migrations, in order."""
    folder = resources.files("isolation_harness.reference_app.migrations") / service
    if not folder.is_dir():
        return []
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text()) for f in files]


def migrate(admin_dsn: str, services: Iterable[str], *, legacy: bool) -> list[str]:
    """Create roles and schemas and apply pending migrations; return what was applied.
    ``legacy``: for the legacy design, whose one role reaches every schema (else that role
    is dropped if an earlier run made it)."""
    order = list(services)
    applied: list[str] = []
    conn = psycopg2.connect(admin_dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
            try:
                for service in order:
                    applied += _migrate_service(cur, service)
                if legacy:
                    _grant_legacy_role(cur, order)
                else:
                    _drop_legacy_role(cur)
                if READER_SERVICE in order:
                    _grant_reads(cur, READER_SERVICE, [s for s in order if s != READER_SERVICE])
            finally:
                cur.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    finally:
        conn.close()
    return applied


def _ensure_role(cur: psycopg2.extensions.cursor, role: str) -> None:
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    if cur.fetchone() is None:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))


def _grant_legacy_role(cur: psycopg2.extensions.cursor, services: list[str]) -> None:
    """The legacy design's one role, a member of every service's role: it reaches them all."""
    _ensure_role(cur, LEGACY_ROLE)
    for service in services:
        role = sql.Identifier(role_of(service))
        cur.execute(sql.SQL("GRANT {} TO {}").format(role, sql.Identifier(LEGACY_ROLE)))


def _drop_legacy_role(cur: psycopg2.extensions.cursor) -> None:
    """The legacy design's role gone, if a legacy run made it: it owns nothing (its
    privileges are memberships, dropped with it)."""
    cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(LEGACY_ROLE)))


def _grant_reads(cur: psycopg2.extensions.cursor, reader: str, schemas: list[str]) -> None:
    """Let ``reader``'s role read ``schemas``: existing tables, and those created later."""
    role = sql.Identifier(role_of(reader))
    for schema in schemas:
        name, owner = sql.Identifier(schema), sql.Identifier(role_of(schema))
        cur.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(name, role))
        cur.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(name, role))
        cur.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT ON TABLES TO {}"
            ).format(owner, name, role)
        )
    # Belt and braces: a session of the reader cannot write even where a grant slipped in.
    cur.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(role))


def _migrate_service(cur: psycopg2.extensions.cursor, service: str) -> list[str]:
    role = role_of(service)
    _ensure_role(cur, role)
    cur.execute(
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
            sql.Identifier(service), sql.Identifier(role)
        )
    )
    cur.execute(
        sql.SQL("ALTER ROLE {} SET search_path = {}").format(
            sql.Identifier(role), sql.Identifier(service)
        )
    )
    applied = []
    cur.execute("BEGIN")
    try:
        cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        cur.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.schema_migrations "
                "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(sql.Identifier(service))
        )
        cur.execute(
            sql.SQL("SELECT name FROM {}.schema_migrations").format(sql.Identifier(service))
        )
        done = {row[0] for row in cur.fetchall()}
        for name, text in migrations_of(service):
            if name in done:
                continue
            cur.execute(text)
            cur.execute(
                sql.SQL("INSERT INTO {}.schema_migrations (name) VALUES (%s)").format(
                    sql.Identifier(service)
                ),
                (name,),
            )
            applied.append(f"{service}/{name}")
        cur.execute("COMMIT")
    except BaseException:
        cur.execute("ROLLBACK")
        raise
    return applied
