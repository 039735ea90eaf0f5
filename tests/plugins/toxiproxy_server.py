"""Toxiproxy for tests: a real server per xdist worker (or the one at TOXIPROXY_URL)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from isolation_harness.chaos.errors import HarnessError
from isolation_harness.chaos.stack import toxiproxy_server as server
from isolation_harness.chaos.toxiproxy.client import ToxiproxyClient
from isolation_harness.topology.ports import free_port
from tests.plugins.preflight import stop_run, test_settings


@pytest.fixture(scope="session")
def toxiproxy_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The API URL of this worker's Toxiproxy server, stopped at the end of the session."""
    settings = test_settings()
    if settings.toxiproxy_url is not None:
        yield settings.toxiproxy_url
        return
    log_dir = Path(tempfile.mkdtemp(prefix="harness-test-toxiproxy-"))
    try:
        try:
            binary = server.ensure_binary(settings)
            running = server.start(binary, free_port(), log_dir / "server.log")
        except HarnessError as exc:
            stop_run(request, "the test Toxiproxy server", exc)
        try:
            yield running.url
        finally:
            server.shutdown(running)
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)


@pytest.fixture
async def toxiproxy(toxiproxy_url: str) -> AsyncIterator[ToxiproxyClient]:
    """A client of this worker's server; proxies the test created are deleted afterwards."""
    async with ToxiproxyClient(toxiproxy_url) as client:
        before = set(await client.proxies())
        try:
            yield client
        finally:
            for name in set(await client.proxies()) - before:
                await client.delete_proxy(name)
