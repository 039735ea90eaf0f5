"""The composition root: ``create_app(settings)`` is the only place where objects are wired."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

from isolation_harness.reference_app import fault_api, health
from isolation_harness.reference_app.app_keys import (
    ADMIN,
    DATABASES,
    DEPOSITS,
    EXPRESS,
    FAULTS,
    METRICS,
    P2P,
    PRICES,
    PRICES_HTTP,
    PROVIDER_HTTP,
    ROUTES,
    SETTINGS,
    SWAP,
    TOKENS,
    WALLET,
)
from isolation_harness.reference_app.auth import Tokens
from isolation_harness.reference_app.boundary import Boundary
from isolation_harness.reference_app.db import (
    DatabaseManager,
    ServiceDatabase,
    statement_cancellations_logged_once,
)
from isolation_harness.reference_app.faults import FaultSwitches
from isolation_harness.reference_app.http_api import Route
from isolation_harness.reference_app.legacy import SharedPoolDatabase
from isolation_harness.reference_app.loop_lag import LoopLag
from isolation_harness.reference_app.metrics import AppMetrics
from isolation_harness.reference_app.middleware import deadline, errors, metrics, request_id
from isolation_harness.reference_app.migrate import migrate
from isolation_harness.reference_app.prices import Prices
from isolation_harness.reference_app.prices_client import PriceSource
from isolation_harness.reference_app.services.admin import views as admin_views
from isolation_harness.reference_app.services.admin.service import AdminService
from isolation_harness.reference_app.services.background import views as background_views
from isolation_harness.reference_app.services.background.domain import pairs_of
from isolation_harness.reference_app.services.background.feed import PriceFeed
from isolation_harness.reference_app.services.background.jobs import JobRunner, scheduled_jobs
from isolation_harness.reference_app.services.background.service import BackgroundService
from isolation_harness.reference_app.services.deposits import views as deposit_views
from isolation_harness.reference_app.services.deposits.provider import PaymentProvider
from isolation_harness.reference_app.services.deposits.service import DepositsService
from isolation_harness.reference_app.services.express import views as express_views
from isolation_harness.reference_app.services.express.service import ExpressService
from isolation_harness.reference_app.services.p2p import views as p2p_views
from isolation_harness.reference_app.services.p2p.service import P2PService
from isolation_harness.reference_app.services.swap import views as swap_views
from isolation_harness.reference_app.services.swap.service import SwapService
from isolation_harness.reference_app.services.wallet import views as wallet_views
from isolation_harness.reference_app.services.wallet.service import WalletService
from isolation_harness.reference_app.settings import LEGACY_POOL, SERVICES, AppSettings

log = logging.getLogger("reference_app")


def create_app(settings: AppSettings, *, fault_state_file: Path | None = None) -> web.Application:
    """Build the app for ``settings``: pools, services, routes; nothing is built at import."""
    isolated = settings.architecture == "isolated"
    app = web.Application(
        middlewares=[
            request_id,
            metrics,
            errors(structured=isolated),
            *([deadline(settings.service_timeout)] if isolated else []),
        ],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[TOKENS] = Tokens(settings.token_secret, settings.admin_token)
    app[METRICS] = AppMetrics()
    app[FAULTS] = FaultSwitches(SERVICES, fault_state_file)
    app.cleanup_ctx.append(_schema)
    app.cleanup_ctx.append(_databases)
    app.cleanup_ctx.append(_http_clients)
    app.cleanup_ctx.append(_services)
    app.cleanup_ctx.append(_fault_watch)
    app.cleanup_ctx.append(_loop_lag)
    app.cleanup_ctx.append(_background_tasks)

    routes: list[Route] = [
        *health.ROUTES,
        *deposit_views.ROUTES,
        *wallet_views.ROUTES,
        *p2p_views.ROUTES,
        *swap_views.ROUTES,
        *express_views.ROUTES,
        *admin_views.ROUTES,
        *background_views.ROUTES,
    ]
    if settings.fault_api:
        routes += fault_api.ROUTES
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler)
    app[ROUTES] = routes
    return app


async def _schema(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if settings.admin_dsn is not None:
        legacy = settings.architecture == "legacy"
        applied = await asyncio.to_thread(migrate, settings.admin_dsn, SERVICES, legacy=legacy)
        if applied:
            log.info("migrations applied: %s", ", ".join(applied))
    yield


async def _databases(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    isolated = settings.architecture == "isolated"
    manager = DatabaseManager(
        app[METRICS], app[FAULTS], database=ServiceDatabase if isolated else SharedPoolDatabase
    )
    with statement_cancellations_logged_once():
        try:
            if isolated:
                for service in SERVICES:
                    await manager.add_pool(service, settings.databases[service], (service,))
            else:
                assert settings.legacy_database is not None
                # Root causes 1 to 3 (reference_app/legacy.py): one object, one pool for
                # every feature, no acquire timeout.
                shared = settings.legacy_database.model_copy(update={"acquire_timeout": None})
                await manager.add_pool(LEGACY_POOL, shared, SERVICES)
            app[DATABASES] = manager
            yield
        finally:
            await app[FAULTS].close()
            await manager.close()


async def _services(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    isolated = settings.architecture == "isolated"
    manager = app[DATABASES]

    def boundary(service: str) -> Boundary:
        return Boundary(
            service, timeout=settings.service_timeout if isolated else None, isolate=isolated
        )

    wallet = WalletService(manager.for_service("wallet"), boundary("wallet"))
    app[WALLET] = wallet
    provider = PaymentProvider(
        app[PROVIDER_HTTP],
        settings.payments_url,
        settings.payments_api_key,
        settings.provider_timeout,
    )
    app[DEPOSITS] = DepositsService(
        manager.for_service("deposits"),
        boundary("deposits"),
        wallet,
        provider,
        ipn_secret=settings.ipn_secret,
        ipn_callback_url=settings.public_url.rstrip("/") + "/api/nowpayments/ipn",
        # half the pool at most held by IPNs waiting on the wallet (the old design: no bound)
        ipn_holds=max(1, settings.databases["deposits"].max_size // 2) if isolated else None,
    )
    app[P2P] = P2PService(manager.for_service("p2p"), boundary("p2p"), wallet, settings)
    swap_prices, express_prices = _prices(app)
    app[SWAP] = SwapService(
        manager.for_service("swap"), boundary("swap"), wallet, swap_prices, settings
    )
    app[EXPRESS] = ExpressService(
        manager.for_service("express"), boundary("express"), wallet, express_prices, settings
    )
    background = BackgroundService(
        manager.for_service("background"),
        boundary("background"),
        app[DEPOSITS],
        app[SWAP],
        app[EXPRESS],
        app[P2P],
        settings,
    )
    app[background_views.BACKGROUND] = background
    app[background_views.JOBS] = JobRunner(scheduled_jobs(background, settings))
    app[ADMIN] = AdminService(
        manager.for_service("admin"), boundary("admin"), manager.stats, settings
    )
    yield


def _prices(app: web.Application) -> tuple[Prices, Prices]:
    """Where swap and express get prices: the background's feed (in memory), or, without a
    feed (``price_feed_interval`` None), the source itself on every quote."""
    settings = app[SETTINGS]
    # The feed judges a price's age when it is read, so its source accepts any age.
    app[PRICES] = PriceSource(
        app[PRICES_HTTP], settings.prices_url, settings.prices_timeout,
        max_age=math.inf, service="background",
    )  # fmt: skip
    if settings.price_feed_interval is None:

        def direct(service: str) -> PriceSource:
            return PriceSource(app[PRICES_HTTP], settings.prices_url, settings.prices_timeout,
                               max_age=settings.price_max_age, service=service)  # fmt: skip

        return direct("swap"), direct("express")
    feed = PriceFeed(
        app[PRICES],
        pairs_of(settings.currencies),
        interval=settings.price_feed_interval,
        max_age=settings.price_max_age,
    )
    app[background_views.PRICE_FEED] = feed
    return feed.for_service("swap"), feed.for_service("express")


async def _background_tasks(app: web.Application) -> AsyncIterator[None]:
    """The feed's first poll (so the app starts with prices if the source answers within
    its timeout), then the feed and the jobs as tasks, stopped when the app stops."""
    background = app[background_views.BACKGROUND]
    feed = app.get(background_views.PRICE_FEED)
    jobs = app[background_views.JOBS]
    if feed is not None:
        try:
            await feed.tick(background.record_prices)
        except Exception:  # a bug, not the source (its failures are recorded): start anyway
            log.exception("price feed: the first poll failed")
        feed.start(background.record_prices)
    jobs.start()
    yield
    await jobs.stop()
    if feed is not None:
        await feed.stop()


async def _http_clients(app: web.Application) -> AsyncIterator[None]:
    """The provider's and the price source's HTTP clients, each with its own connections."""
    settings = app[SETTINGS]
    provider = aiohttp.TCPConnector(limit=settings.provider_connections)
    prices = aiohttp.TCPConnector(limit=settings.prices_connections)
    async with (
        aiohttp.ClientSession(connector=provider) as provider_http,
        aiohttp.ClientSession(connector=prices) as prices_http,
    ):
        app[PROVIDER_HTTP] = provider_http
        app[PRICES_HTTP] = prices_http
        yield


async def _fault_watch(app: web.Application) -> AsyncIterator[None]:
    """Follow faults set through other workers, and publish this worker's pool gauges."""
    tasks = [
        asyncio.create_task(app[FAULTS].watch(), name="fault-watch"),
        asyncio.create_task(_publish_pools(app[METRICS]), name="pool-gauges"),
    ]
    yield
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _loop_lag(app: web.Application) -> AsyncIterator[None]:
    """Measure this worker's event-loop lag for /metrics while the app runs."""
    task = asyncio.create_task(LoopLag(app[METRICS]).watch(), name="loop-lag")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _publish_pools(metrics: AppMetrics) -> None:
    if not metrics.multiprocess:
        return
    while True:
        metrics.publish_pools()
        await asyncio.sleep(0.25)
