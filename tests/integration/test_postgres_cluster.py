"""The throw-away cluster and its controls, on a real PostgreSQL."""

from __future__ import annotations

import os
import pwd
import shutil
import time
from pathlib import Path

import psycopg2
import pytest

from isolation_harness.chaos.errors import (
    ComponentError,
    MissingToolError,
    NotReadyError,
    NotSupportedError,
)
from isolation_harness.chaos.stack import postgres
from isolation_harness.chaos.stack.process import ProcessRecord, children_of
from isolation_harness.topology.ports import free_port
from tests.plugins.pg_cluster import PostgresServer, cluster_folder, new_cluster
from tests.plugins.preflight import test_settings

RECONNECT_DEADLINE = 10.0


def scalar(dsn: str, query: str) -> object:
    conn = postgres.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            row = cur.fetchone()
            assert row is not None
            return row[0]
    finally:
        conn.close()


def owner_of(pid: int) -> str:
    return pwd.getpwuid(Path(f"/proc/{pid}").stat().st_uid).pw_name


def test_cluster_serves_queries(pg_server: PostgresServer) -> None:
    assert scalar(pg_server.dsn(), "SELECT 41 + 1") == 42


@pytest.mark.skipif(os.geteuid() != 0, reason="the root case needs root")
def test_started_as_root_it_runs_as_the_postgres_user(fresh_cluster: postgres.LocalCluster) -> None:
    record = fresh_cluster.postmaster()
    assert record is not None
    assert owner_of(record.pid) == "postgres"
    assert owner_of_path(fresh_cluster.data_dir) == "postgres"


def owner_of_path(path: Path) -> str:
    return pwd.getpwuid(path.stat().st_uid).pw_name


def test_configuration_is_the_harness_one(fresh_cluster: postgres.LocalCluster) -> None:
    dsn = fresh_cluster.dsn()
    assert scalar(dsn, "SHOW listen_addresses") == "127.0.0.1"
    assert scalar(dsn, "SHOW unix_socket_directories") == ""
    assert int(str(scalar(dsn, "SHOW max_connections"))) == fresh_cluster.max_connections
    assert scalar(dsn, "SHOW fsync") == "off"
    # Acknowledged commits must survive a crash, or the invariants would blame the app.
    assert scalar(dsn, "SHOW synchronous_commit") == "on"
    rules = scalar(dsn, "SELECT array_agg(DISTINCT address) FROM pg_hba_file_rules")
    assert sorted(rules) == ["127.0.0.1", "::1"]  # type: ignore[arg-type]


def test_max_connections_allows_every_service_pool(fresh_cluster: postgres.LocalCluster) -> None:
    """Seven services with up to 50 connections each must fit, with room for the harness."""
    assert fresh_cluster.max_connections >= 7 * 50 + 20


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_restart_then_new_connection_within_deadline(
    fresh_cluster: postgres.LocalCluster, mode: postgres.RestartMode
) -> None:
    dsn = fresh_cluster.dsn()
    conn = postgres.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)")
    before = fresh_cluster.postmaster()
    fresh_cluster.restart(mode)
    waited = postgres.wait_ready(dsn, RECONNECT_DEADLINE)
    after = fresh_cluster.postmaster()
    assert before is not None
    assert after is not None
    assert after.pid != before.pid, "the postmaster was not restarted"
    assert waited < RECONNECT_DEADLINE
    # The old session did not survive the restart…
    with pytest.raises(psycopg2.Error), conn.cursor() as cur:
        cur.execute("SELECT 1")
    conn.close()
    # …but committed data did.
    assert scalar(dsn, "SELECT v FROM kept") == 7


def test_crash_kills_postmaster_and_backends_then_recovers(
    fresh_cluster: postgres.LocalCluster,
) -> None:
    dsn = fresh_cluster.dsn()
    held = postgres.connect(dsn)
    with held.cursor() as cur:
        cur.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (9)")
        cur.execute("SELECT pg_backend_pid()")
        backend_pid = cur.fetchone()[0]  # type: ignore[index]
    backend = ProcessRecord.of(backend_pid)
    postmaster = fresh_cluster.postmaster()
    assert postmaster is not None
    assert backend_pid in children_of(postmaster.pid)
    fresh_cluster.crash()
    assert fresh_cluster.postmaster() is None
    assert not postmaster.alive()
    assert not backend.alive(), "a backend survived the crash"
    with pytest.raises(ComponentError):
        postgres.ping(dsn, timeout=1)
    held.close()
    started = time.monotonic()
    fresh_cluster.start()
    assert postgres.wait_ready(dsn, RECONNECT_DEADLINE) < RECONNECT_DEADLINE
    assert time.monotonic() - started < RECONNECT_DEADLINE
    assert scalar(dsn, "SELECT v FROM kept") == 9


def test_crash_of_a_stopped_cluster_is_an_error(fresh_cluster: postgres.LocalCluster) -> None:
    fresh_cluster.stop()
    with pytest.raises(ComponentError, match="not running"):
        fresh_cluster.crash()


def test_stopped_cluster_is_not_ready_within_deadline(fresh_cluster: postgres.LocalCluster) -> None:
    fresh_cluster.stop()
    started = time.monotonic()
    with pytest.raises(NotReadyError, match=r"not ready after 0\.5 s"):
        postgres.wait_ready(fresh_cluster.dsn(), 0.5)
    assert time.monotonic() - started < 5
    fresh_cluster.start()
    assert scalar(fresh_cluster.dsn(), "SELECT 1") == 1


def test_stop_and_start_are_idempotent(fresh_cluster: postgres.LocalCluster) -> None:
    fresh_cluster.start()
    fresh_cluster.stop()
    fresh_cluster.stop()
    assert fresh_cluster.postmaster() is None
    fresh_cluster.start()
    assert fresh_cluster.postmaster() is not None


def test_destroy_removes_the_cluster(fresh_cluster: postgres.LocalCluster) -> None:
    record = fresh_cluster.postmaster()
    assert record is not None
    fresh_cluster.destroy()
    assert not record.alive()
    assert not fresh_cluster.data_dir.exists()
    with pytest.raises(ComponentError):
        postgres.ping(fresh_cluster.dsn(), timeout=1)


def test_databases_are_created_once_and_dropped(pg_server: PostgresServer) -> None:
    admin = pg_server.dsn()
    postgres.ensure_database(admin, "harness_probe_db")
    postgres.ensure_database(admin, "harness_probe_db")
    assert (
        scalar(pg_server.dsn("harness_probe_db"), "SELECT current_database()") == "harness_probe_db"
    )
    postgres.drop_database(admin, "harness_probe_db")
    exists = scalar(admin, "SELECT count(*) FROM pg_database WHERE datname = 'harness_probe_db'")
    assert exists == 0


def test_missing_binaries_say_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(MissingToolError) as caught:
        postgres.find_bin_dir(tmp_path)
    assert "apt-get install postgresql" in caught.value.fix


def test_external_server_cannot_be_restarted() -> None:
    external = postgres.ExternalPostgres("host=db.example port=6000 user=u dbname=app")
    assert (external.host, external.port) == ("db.example", 6000)
    assert "dbname=other" in external.dsn("other")
    with pytest.raises(NotSupportedError, match="HARNESS_PG_DSN"):
        external.restart("fast")


def test_a_new_cluster_is_a_copy_of_the_kept_initdb_output() -> None:
    """The first cluster runs initdb and keeps its output whole; the next ones copy it, and
    each still runs with its own port and settings, as the postgres user when root."""
    folder = cluster_folder("harness-test-template-")
    templates = folder / "templates"
    first = replace_templates(new_cluster(folder / "one"), templates)
    second = replace_templates(new_cluster(folder / "two"), templates)
    try:
        first.init()
        kept = list(templates.iterdir())
        assert len(kept) == 1, kept  # nothing partial left beside it
        assert (kept[0] / "PG_VERSION").exists()
        assert not (kept[0] / "harness.conf").exists(), "the copy is initdb's output only"
        (kept[0] / "copied-from-the-template").write_text("")
        second.start()
        assert (second.data_dir / "copied-from-the-template").exists()
        assert scalar(second.dsn(), "SHOW port") == str(second.port)
        assert scalar(second.dsn(), "SHOW fsync") == "off"
        if os.geteuid() == 0:
            assert {owner_of_path(p) for p in [second.data_dir, *second.data_dir.rglob("*")]} == {
                "postgres"
            }
    finally:
        second.destroy()
        first.destroy()
        shutil.rmtree(folder, ignore_errors=True)


def test_a_template_that_is_not_whole_is_not_used() -> None:
    folder = cluster_folder("harness-test-template-")
    cluster = replace_templates(new_cluster(folder / "one"), folder / "templates")
    template = cluster._template()
    assert template is not None
    template.mkdir(parents=True)
    (template / "not-a-data-folder").write_text("")
    try:
        cluster.start()
        assert not (cluster.data_dir / "not-a-data-folder").exists()
        assert scalar(cluster.dsn(), "SELECT 1") == 1
    finally:
        cluster.destroy()
        shutil.rmtree(folder, ignore_errors=True)


def replace_templates(cluster: postgres.LocalCluster, templates: Path) -> postgres.LocalCluster:
    cluster.templates = templates
    return cluster


def test_without_fsync_a_cluster_lives_in_a_ram_folder_that_destroy_removes() -> None:
    """fsync off says the data need not survive the operating system: the cluster keeps its
    data and its log in a folder of its own in RAM, named after nothing else and saying
    whose it is; destroying the cluster removes that folder whole. (A folder under /tmp
    stands for /dev/shm here, which this machine may or may not have room in.)"""
    ram, state = cluster_folder("harness-test-ram-"), cluster_folder("harness-test-state-")
    data = postgres.data_folder(state, fsync=False, ram_root=ram)
    home = data.parent
    assert home.parent == ram
    assert home.name.startswith(postgres.RAM_PREFIX)
    assert (home / "owner").read_text() == str(state.resolve())
    settings = test_settings()
    cluster = postgres.LocalCluster(
        postgres.find_bin_dir(settings.pg_bin), data, free_port(), templates=settings.pg_templates
    )
    try:
        cluster.start()
        assert scalar(cluster.dsn(), "SELECT 1") == 1
        assert cluster.log_path.parent == home
        assert not list(state.iterdir()), "the cluster wrote into the state folder"
    finally:
        cluster.destroy()
        gone = not home.exists()
        shutil.rmtree(ram, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
    assert gone, "the RAM folder outlived its cluster"


def test_with_fsync_or_without_room_in_ram_the_cluster_stays_in_the_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ram = tmp_path / "ram"
    ram.mkdir()
    assert postgres.data_folder(tmp_path, fsync=True, ram_root=ram) == tmp_path / "pg" / "data"
    assert postgres.data_folder(tmp_path, fsync=False, ram_root=tmp_path / "none") == (
        tmp_path / "pg" / "data"
    )
    monkeypatch.setattr(postgres, "RAM_NEEDED", 1 << 62)  # more than any machine has
    assert postgres.data_folder(tmp_path, fsync=False, ram_root=ram) == tmp_path / "pg" / "data"
    assert not list(ram.iterdir())
