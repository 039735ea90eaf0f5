"""Typed keys of the application's state (``web.AppKey``): no module-level singletons."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from isolation_harness.reference_app.auth import Tokens
from isolation_harness.reference_app.db import DatabaseManager
from isolation_harness.reference_app.faults import FaultSwitches
from isolation_harness.reference_app.http_api import Route
from isolation_harness.reference_app.metrics import AppMetrics
from isolation_harness.reference_app.prices_client import PriceSource
from isolation_harness.reference_app.services.admin.service import AdminService
from isolation_harness.reference_app.services.deposits.service import DepositsService
from isolation_harness.reference_app.services.express.service import ExpressService
from isolation_harness.reference_app.services.p2p.service import P2PService
from isolation_harness.reference_app.services.swap.service import SwapService
from isolation_harness.reference_app.services.wallet.service import WalletService
from isolation_harness.reference_app.settings import AppSettings

SETTINGS = web.AppKey("settings", AppSettings)
TOKENS = web.AppKey("tokens", Tokens)
METRICS = web.AppKey("metrics", AppMetrics)
FAULTS = web.AppKey("faults", FaultSwitches)
DATABASES = web.AppKey("databases", DatabaseManager)
WALLET = web.AppKey("wallet", WalletService)
ROUTES = web.AppKey("routes", list[Route])
P2P = web.AppKey("p2p", P2PService)
SWAP = web.AppKey("swap", SwapService)
PRICES = web.AppKey("prices", PriceSource)
#: the HTTP clients of the payment provider and of the price source: one each, with its own
#: connection limit, so that a slow provider cannot take the connections price polls need
PROVIDER_HTTP = web.AppKey("provider_http", aiohttp.ClientSession)
PRICES_HTTP = web.AppKey("prices_http", aiohttp.ClientSession)
DEPOSITS = web.AppKey("deposits", DepositsService)
EXPRESS = web.AppKey("express", ExpressService)
ADMIN = web.AppKey("admin", AdminService)
