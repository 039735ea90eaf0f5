"""Run by test_parallel_workers.py in a child `pytest -n 2` (not collected by the suite).

Each test records which worker ran it on which components, and does things that would
clash if two workers shared a cluster or a Toxiproxy server.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from isolation_harness.chaos.stack import postgres
from isolation_harness.chaos.toxiproxy.client import ToxiproxyClient
from tests.plugins.pg_cluster import PostgresServer


@pytest.mark.parametrize("n", range(4))
async def test_probe(
    n: int, pg_server: PostgresServer, toxiproxy: ToxiproxyClient, toxiproxy_url: str
) -> None:
    proxy = await toxiproxy.create_proxy(
        "probe_link", listen="127.0.0.1:0", upstream=f"{pg_server.host}:{pg_server.port}"
    )
    dsn = f"host=127.0.0.1 port={proxy.listen_port} user=postgres dbname=postgres"
    conn = await asyncio.to_thread(postgres.connect, dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE probe (n int)")  # fails if another worker made it
            cur.execute("DROP TABLE probe")
            cur.execute("SELECT pg_sleep(0.3)")  # give the other worker time to take tests
    finally:
        conn.close()
    record = {
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
        "pg_port": pg_server.port,
        "toxiproxy_url": toxiproxy_url,
    }
    out = Path(os.environ["WORKERS_PROBE_OUT"]) / f"{n}.json"
    out.write_text(json.dumps(record))
