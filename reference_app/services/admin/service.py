"""Admin dashboard use cases (being written)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from reference_app.boundary import Boundary, BoundedService
from reference_app.db import ServiceDatabase
from reference_app.metrics import PoolStats
from reference_app.settings import AppSettings

SERVICE = "admin"


class AdminService(BoundedService):
    def __init__(
        self,
        db: ServiceDatabase,
        boundary: Boundary,
        pool_stats: Callable[[], Mapping[str, PoolStats]],
        settings: AppSettings,
    ) -> None:
        self.db = db
        self.boundary = boundary
        self.pool_stats = pool_stats
        self.settings = settings
