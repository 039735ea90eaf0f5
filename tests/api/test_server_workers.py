"""The app served by several worker processes on one port, as
`python -m isolation_harness.reference_app`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from isolation_harness.chaos.stack.process import ProcessRecord, children_of, wait_gone
from isolation_harness.chaos.toxiproxy.client import Proxy
from isolation_harness.reference_app.migrate import migrate
from isolation_harness.reference_app.settings import SERVICES
from isolation_harness.topology.ports import free_port, is_listening
from tests.plugins.api_helpers import metric
from tests.plugins.pg_cluster import PostgresServer
from tests.plugins.reference_app import ADMIN_TOKEN, make_settings

WORKERS = 2


#: imported by every Python process at start-up, before the server names its metrics folder
EARLY_IMPORT = "import prometheus_client, reference_app.app\n"


@pytest.fixture(params=["plain", "prometheus imported at start-up"])
async def served(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    pg_server: PostgresServer,
    links: dict[str, Proxy],
    app_database: str,
) -> AsyncIterator[tuple[str, subprocess.Popen[bytes]]]:
    env = dict(os.environ)
    if request.param != "plain":  # as a sitecustomize or an agent may: the workers still count
        (tmp_path / "sitecustomize.py").write_text(EARLY_IMPORT)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    port = free_port()
    settings = make_settings(pg_server, links, admin_dsn=app_database)
    config = tmp_path / "settings.json"
    config.write_text(settings.model_dump_json())
    process = subprocess.Popen(
        [sys.executable, "-m", "isolation_harness.reference_app", "--config", str(config),
         "--port", str(port), "--workers", str(WORKERS)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not is_listening(port):
            assert process.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server did not start"
            await asyncio.sleep(0.05)
        yield url, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        # its start migrated for the isolated design, dropping the legacy role: the next
        # legacy app of this worker needs it back (its first request failed, role missing)
        await asyncio.to_thread(migrate, app_database, SERVICES, legacy=True)


async def test_workers_share_the_port_faults_and_metrics(
    served: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, process = served
    workers = [ProcessRecord.of(pid) for pid in children_of(process.pid)]
    async with aiohttp.ClientSession() as http:
        pids: set[int] = set()
        # Both workers must be up and serving; new connections are spread by the kernel.
        deadline = time.monotonic() + 30
        while len(pids) < WORKERS and time.monotonic() < deadline:
            async with http.get(f"{url}/health/live", headers={"Connection": "close"}) as r:
                pids.add((await r.json())["worker"])
        assert len(pids) == WORKERS

        async with http.post(f"{url}/api/users", json={"username": f"w_{time.time_ns()}"}) as r:
            token = (await r.json())["token"]
        auth = {"Authorization": f"Bearer {token}", "Connection": "close"}
        for _ in range(40):
            async with http.get(f"{url}/api/wallet/balances", headers=auth) as r:
                assert r.status == 200
        async with http.get(f"{url}/metrics") as r:
            text = await r.text()
        assert metric(text, "http_requests_total", route="/api/wallet/balances", status="200") == 40
        assert metric(text, "db_pool_max_size", service="wallet") == 10 * WORKERS
        # counted from the start in every worker, so "no acquire gave up" is a measurement
        assert metric(text, "db_pool_acquire_timeouts_total", service="wallet") == 0
        # every worker measures its own loop; the gauge is the worst live worker's, one value
        assert metric(text, "event_loop_lag_seconds_count") > 0
        assert len([ln for ln in text.splitlines()
                    if ln.startswith("event_loop_lag_max_seconds")]) == 1  # fmt: skip

        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with http.put(
            f"{url}/api/_faults/wallet", json={"mode": "raise"}, headers=admin
        ) as r:
            assert r.status == 200
        # The fault API answers once every worker holds the change: no waiting here.
        statuses = []
        for _ in range(20):
            async with http.get(f"{url}/api/wallet/balances", headers=auth) as r:
                statuses.append(r.status)
        assert statuses == [503] * 20
        async with http.delete(f"{url}/api/_faults", headers=admin) as r:
            assert r.status == 200

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    deadline = time.monotonic() + 10
    assert all(wait_gone(worker, deadline) for worker in workers)
    port = int(url.rsplit(":", 1)[1])
    assert not is_listening(port)


@pytest.mark.parametrize("missing", ["admin_token", "payments_api_key", "ipn_secret"])
def test_a_missing_secret_is_a_clear_start_up_error(tmp_path: Path, missing: str) -> None:
    """No secret has a default every install would share: each missing one stops the
    start, named."""
    settings = {"architecture": "legacy", "legacy_database": {"dsn": "host=nowhere"},
                "admin_token": "a" * 16, "token_secret": "t" * 16,
                "payments_api_key": "k" * 16, "ipn_secret": "s" * 16}  # fmt: skip
    del settings[missing]
    config = tmp_path / "settings.json"
    config.write_text(json.dumps(settings))
    result = subprocess.run(
        [sys.executable, "-m", "isolation_harness.reference_app", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--config" in result.stderr
    assert missing in result.stderr
    assert "Field required" in result.stderr
