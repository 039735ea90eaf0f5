"""P2P use cases (being written)."""

from __future__ import annotations

from reference_app.boundary import Boundary, BoundedService
from reference_app.db import ServiceDatabase
from reference_app.services.wallet.service import WalletService
from reference_app.settings import AppSettings

SERVICE = "p2p"


class P2PService(BoundedService):
    def __init__(
        self, db: ServiceDatabase, boundary: Boundary, wallet: WalletService, settings: AppSettings
    ) -> None:
        self.db = db
        self.boundary = boundary
        self.wallet = wallet
        self.settings = settings
