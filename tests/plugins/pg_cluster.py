"""PostgreSQL for tests: one throw-away cluster per xdist worker, or databases on HARNESS_PG_DSN.

``pg_server`` is shared by a worker's tests; ``fresh_cluster`` is a cluster of one test's
own, for tests that restart or crash it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from isolation_harness.chaos.errors import HarnessError
from isolation_harness.chaos.stack import postgres
from isolation_harness.topology.ports import free_port
from tests.plugins.preflight import stop_run, test_settings

PostgresServer = postgres.LocalCluster | postgres.ExternalPostgres


def worker_name(config: pytest.Config) -> str:
    """``gw0``, ``gw1``… under xdist, ``main`` otherwise."""
    workerinput = getattr(config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else "main"


def cluster_folder(prefix: str) -> Path:
    """A folder under /tmp the ``postgres`` user can enter (pytest's tmp_path is 0700 root)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    return folder


def new_cluster(folder: Path) -> postgres.LocalCluster:
    """A cluster in ``folder`` on a free port, configured as the harness configures its own."""
    settings = test_settings()
    return postgres.LocalCluster(
        postgres.find_bin_dir(settings.pg_bin),
        postgres.data_folder(folder, fsync=settings.pg_fsync == "on"),
        free_port(),
        fsync=settings.pg_fsync == "on",
        max_connections=settings.pg_max_connections,
        templates=settings.pg_templates,
    )


@contextlib.contextmanager
def running_cluster(
    request: pytest.FixtureRequest, prefix: str, what: str
) -> Iterator[postgres.LocalCluster]:
    """A started cluster in a new folder; stopped and deleted afterwards, whatever happens."""
    folder = cluster_folder(prefix)
    cluster = new_cluster(folder)
    try:
        try:
            cluster.start()
        except HarnessError as exc:
            stop_run(request, what, exc)
        yield cluster
    finally:
        try:
            cluster.destroy()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    """This worker's PostgreSQL: its own cluster, or its own database on HARNESS_PG_DSN."""
    worker = worker_name(request.config)
    settings = test_settings()
    if settings.pg_dsn is not None:
        external = postgres.ExternalPostgres(settings.pg_dsn)
        database = f"harness_test_{worker}_{os.getpid()}"
        try:
            postgres.ensure_database(external.dsn(), database)
        except HarnessError as exc:
            stop_run(request, "PostgreSQL at HARNESS_PG_DSN", exc)
        yield postgres.ExternalPostgres(external.dsn(database))
        postgres.drop_database(external.dsn(), database)
        return
    with running_cluster(request, f"harness-test-pg-{worker}-", "the test PostgreSQL cluster") as c:
        yield c


@pytest.fixture
def fresh_cluster(request: pytest.FixtureRequest) -> Iterator[postgres.LocalCluster]:
    """A started cluster of this test's own, destroyed afterwards (for restart/crash tests)."""
    if test_settings().pg_dsn is not None:
        pytest.skip("restart and crash need a cluster the harness controls, not HARNESS_PG_DSN")
    with running_cluster(request, "harness-test-pg-own-", "a test's own PostgreSQL cluster") as c:
        yield c
