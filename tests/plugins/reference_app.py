"""The reference backend for tests: its database on this worker's PostgreSQL, a Toxiproxy
link per service, and the app served over real HTTP (aiohttp's TestServer)."""

from __future__ import annotations

import contextlib
import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from isolation_harness.chaos.stack import postgres
from isolation_harness.chaos.toxiproxy.client import Proxy, ToxiproxyClient
from isolation_harness.reference_app.app import create_app
from isolation_harness.reference_app.app_keys import FAULTS
from isolation_harness.reference_app.fakes.payments import PaymentsFakeConfig, create_payments_app
from isolation_harness.reference_app.fakes.prices import (
    PRICE_BOOK,
    PriceBook,
    PricesFakeConfig,
    create_prices_app,
)
from isolation_harness.reference_app.faults import Fault, FaultMode
from isolation_harness.reference_app.migrate import migrate
from isolation_harness.reference_app.settings import SERVICES, AppSettings, PoolSettings
from isolation_harness.topology.services import APP_DATABASE, LEGACY_ROLE, role_of
from tests.plugins.pg_cluster import PostgresServer

ADMIN_TOKEN = "admin-" + "t" * 24
TOKEN_SECRET = "secret-" + "s" * 24


@pytest.fixture(scope="session")
def app_database(pg_server: PostgresServer) -> str:
    """The app's database on this worker's server, migrated for both designs (the tests
    start either on it); returns its admin DSN."""
    postgres.ensure_database(pg_server.dsn(), APP_DATABASE)
    admin_dsn = pg_server.dsn(APP_DATABASE)
    migrate(admin_dsn, SERVICES, legacy=True)
    return admin_dsn


def service_dsn(pg: PostgresServer, port: int, role: str) -> str:
    return f"host=127.0.0.1 port={port} user={role} dbname={APP_DATABASE}"


@pytest.fixture
async def links(
    toxiproxy: ToxiproxyClient, pg_server: PostgresServer, app_database: str
) -> dict[str, Proxy]:
    """A Toxiproxy link to PostgreSQL per service, plus ``shared`` for the legacy design."""
    upstream = f"{pg_server.host}:{pg_server.port}"
    found = {}
    for name in (*SERVICES, "shared"):
        proxy_name = f"pg_{name}_{uuid.uuid4().hex[:6]}"
        found[name] = await toxiproxy.create_proxy(
            proxy_name, listen="127.0.0.1:0", upstream=upstream
        )
    return found


def make_settings(
    pg: PostgresServer, links: dict[str, Proxy], architecture: str = "isolated", **overrides: Any
) -> AppSettings:
    pool = {"min_size": 1, "max_size": 10, "acquire_timeout": 2.0}
    pool.update(overrides.pop("pool", {}))
    values: dict[str, Any] = {
        "architecture": architecture,
        "admin_token": ADMIN_TOKEN,
        "token_secret": TOKEN_SECRET,
        "payments_api_key": PAYMENTS_API_KEY,
        "ipn_secret": IPN_SECRET,
        "fault_api": True,
        "databases": {
            s: PoolSettings(dsn=service_dsn(pg, links[s].listen_port, role_of(s)), **pool)
            for s in SERVICES
        },
        "legacy_database": PoolSettings(
            dsn=service_dsn(pg, links["shared"].listen_port, LEGACY_ROLE), **pool
        ),
    }
    values.update(overrides)
    return AppSettings.model_validate(values)


@dataclass
class RunningApp:
    """An app served on a real port, with a client session."""

    app: web.Application
    server: TestServer
    http: aiohttp.ClientSession

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json: Any = None,
        key: str | None = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One request; returns the status and the decoded JSON body (or text)."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if key is not None:
            sent["Idempotency-Key"] = key
        async with self.http.request(
            method, self.url(path), json=json, data=data, headers=sent
        ) as response:
            text = await response.text()
            try:
                body = await response.json(content_type=None) if text else None
            except ValueError:
                body = text
            return response.status, body

    async def new_user(self, funds: dict[str, str] | None = None) -> tuple[uuid.UUID, str]:
        """A registered user with a token, funded by the admin with ``funds``."""
        status, body = await self.call(
            "POST", "/api/users", json={"username": f"u_{secrets.token_hex(6)}"}
        )
        assert status == 201, body
        user_id, token = uuid.UUID(body["user_id"]), body["token"]
        for currency, amount in (funds or {}).items():
            status, answer = await self.call(
                "POST", "/api/admin/credit", token=ADMIN_TOKEN, key=secrets.token_hex(8),
                json={"user_id": str(user_id), "currency": currency, "amount": amount},
            )  # fmt: skip
            assert status == 201, answer
        return user_id, token


StartApp = Callable[..., Awaitable[RunningApp]]
PAYMENTS_API_KEY = "fake-payments-api-key"
IPN_SECRET = "fake-ipn-secret-0123456789"


@dataclass
class FakeServer:
    """A provider fake: its control URL, and the Toxiproxy link the app reaches it through."""

    url: str
    link: Proxy
    http: aiohttp.ClientSession

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.link.listen_port}"

    async def control(self, method: str, path: str, json: Any = None) -> Any:
        async with self.http.request(method, f"{self.url}/_control{path}", json=json) as answer:
            assert answer.status < 300, await answer.text()
            return await answer.json()


@dataclass
class PaymentsFake(FakeServer):
    """The payment-provider fake."""

    async def progress(self, payment_id: str, status: str, *, through: bool = False) -> Any:
        """Move a payment to ``status`` and deliver the IPN; returns the fake's report."""
        return await self.control(
            "POST", f"/payments/{payment_id}/progress", {"status": status, "through": through}
        )


@dataclass
class PricesFake(FakeServer):
    """The price-source fake, with its state."""

    book: PriceBook


@contextlib.asynccontextmanager
async def served_behind_link(
    toxiproxy: ToxiproxyClient, app: web.Application, name: str
) -> AsyncIterator[tuple[str, Proxy, aiohttp.ClientSession]]:
    """``app`` on a free port, a new Toxiproxy link to it, and a client session."""
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    link = await toxiproxy.create_proxy(
        f"{name}_{uuid.uuid4().hex[:6]}", listen="127.0.0.1:0",
        upstream=f"127.0.0.1:{server.port}",
    )  # fmt: skip
    try:
        async with aiohttp.ClientSession() as http:
            yield str(server.make_url("")).rstrip("/"), link, http
    finally:
        await server.close()


@pytest.fixture
async def payments_fake(toxiproxy: ToxiproxyClient) -> AsyncIterator[PaymentsFake]:
    """The provider fake, reached by the app through its own Toxiproxy link."""
    config = PaymentsFakeConfig(
        api_key=PAYMENTS_API_KEY,
        ipn_secret=IPN_SECRET,
        # Distinct per test: the deposits table outlives the fake.
        first_payment_id=secrets.randbelow(10**9) * 1000 + 10**12,
    )
    async with served_behind_link(toxiproxy, create_payments_app(config), "payments") as served:
        yield PaymentsFake(*served)


@pytest.fixture
async def prices_fake(toxiproxy: ToxiproxyClient) -> AsyncIterator[PricesFake]:
    """The price-source fake, reached by the app's price feed through its own Toxiproxy link."""
    app = create_prices_app(PricesFakeConfig())
    async with served_behind_link(toxiproxy, app, "prices") as served:
        yield PricesFake(*served, app[PRICE_BOOK])


@pytest.fixture
async def start_app(
    pg_server: PostgresServer,
    links: dict[str, Proxy],
    payments_fake: PaymentsFake,
    prices_fake: PricesFake,
) -> AsyncIterator[StartApp]:
    """Start apps (isolated by default) on this worker's database, through the links.

    Prices come from ``prices_fake`` through its link, polled by the app's price feed. A
    test that brings its own source (``prices_url=``) talks to it directly on every quote
    (``price_feed_interval`` None), as those tests were written for, unless it also asks
    for a feed (``price_feed_interval=``).
    """
    started: list[RunningApp] = []

    async def start(architecture: str = "isolated", **overrides: Any) -> RunningApp:
        # Bound before the app is built (its public URL names the port) and handed to the
        # server as is: a port only looked up could be taken meanwhile by any connection
        # of the tests running beside this one.
        listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(("127.0.0.1", 0))
        port = listening.getsockname()[1]
        if "prices_url" in overrides:
            overrides.setdefault("price_feed_interval", None)
        overrides = {
            "public_url": f"http://127.0.0.1:{port}",
            "payments_url": payments_fake.api_url,
            "payments_api_key": PAYMENTS_API_KEY,
            "ipn_secret": IPN_SECRET,
            "prices_url": prices_fake.api_url,
            **overrides,
        }
        app = create_app(make_settings(pg_server, links, architecture, **overrides))
        server = TestServer(app, host="127.0.0.1", port=port, socket_factory=lambda *_: listening)
        await server.start_server()
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        running = RunningApp(app, server, http)
        started.append(running)
        return running

    yield start
    for running in started:
        await running.http.close()
        await running.server.close()


@contextlib.asynccontextmanager
async def service_fault(
    api: RunningApp, service: str, fault: Fault | None = None
) -> AsyncIterator[None]:
    """``service`` broken through the app's fault switches (default: ``raise``, failing
    at its first connection) within the block, every fault cleared after it."""
    await api.app[FAULTS].set(service, fault or Fault(FaultMode.RAISE))
    try:
        yield
    finally:
        await api.app[FAULTS].clear_all()


@pytest.fixture
async def api(start_app: StartApp) -> RunningApp:
    """The isolated app, started."""
    return await start_app()
