"""Typed keys of the application's state (``web.AppKey``): no module-level singletons."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from reference_app.auth import Tokens
from reference_app.db import DatabaseManager
from reference_app.faults import FaultSwitches
from reference_app.http_api import Route
from reference_app.metrics import AppMetrics
from reference_app.prices_client import PriceSource
from reference_app.services.admin.service import AdminService
from reference_app.services.deposits.service import DepositsService
from reference_app.services.express.service import ExpressService
from reference_app.services.p2p.service import P2PService
from reference_app.services.swap.service import SwapService
from reference_app.services.wallet.service import WalletService
from reference_app.settings import AppSettings

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
HTTP = web.AppKey("http", aiohttp.ClientSession)
DEPOSITS = web.AppKey("deposits", DepositsService)
EXPRESS = web.AppKey("express", ExpressService)
ADMIN = web.AppKey("admin", AdminService)
