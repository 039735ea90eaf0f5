"""Express buy use cases (being written)."""

from __future__ import annotations

from reference_app.boundary import Boundary, BoundedService
from reference_app.db import ServiceDatabase
from reference_app.prices import Prices
from reference_app.services.wallet.service import WalletService
from reference_app.settings import AppSettings

SERVICE = "express"


class ExpressService(BoundedService):
    def __init__(
        self,
        db: ServiceDatabase,
        boundary: Boundary,
        wallet: WalletService,
        prices: Prices,
        settings: AppSettings,
    ) -> None:
        self.db = db
        self.boundary = boundary
        self.wallet = wallet
        self.prices = prices
        self.settings = settings
