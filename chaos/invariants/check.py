"""Checking the invariants a scenario names, after its run, on the app's database."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import psycopg2

from isolation_harness.chaos.invariants.base import REGISTRY, Facts, InvariantResult
from isolation_harness.chaos.stack import postgres


def check_invariants(admin_dsn: str, names: Sequence[str], facts: Facts) -> list[InvariantResult]:
    """The results of the registered invariants among ``names``, in that order, checked on
    one superuser connection to ``admin_dsn`` (``facts`` without a cursor: this gives it
    one). A check the database refused is a violation saying so, never a pass."""
    conn = postgres.connect(admin_dsn, timeout=5)
    results = []
    try:
        with conn.cursor() as cursor:
            found = dataclasses.replace(facts, cursor=cursor)
            for name in names:
                kind = REGISTRY.get(name)
                if kind is None:
                    continue
                try:
                    results.append(kind.check(found))
                except psycopg2.Error as exc:
                    results.append(InvariantResult.of(name, 0, [f"could not check: {exc}".strip()]))
    finally:
        conn.close()
    return results
