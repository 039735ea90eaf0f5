"""Settings of the reference backend: everything ``create_app`` wires, validated up front."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from isolation_harness.reference_app.money import DEFAULT_CURRENCIES
from isolation_harness.topology.services import LEGACY_POOL, SERVICES, Variant

__all__ = ["LEGACY_POOL", "MULTIPROC_ENV", "SERVICES", "AppSettings", "PoolSettings", "Variant"]

#: where the server tells its workers to keep their metric files (prometheus-client's name)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class PoolSettings(BaseModel):
    """One PostgreSQL pool: where it connects and how it behaves under pressure."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dsn: str
    min_size: int = Field(default=2, ge=0)
    max_size: int = Field(default=10, ge=1)
    #: seconds to wait for a free connection (including opening a new one); None: forever
    acquire_timeout: float | None = Field(default=2.0, gt=0)
    #: server-side limit for one statement
    statement_timeout_ms: int = Field(default=5000, ge=0)

    @model_validator(mode="after")
    def _sizes(self) -> PoolSettings:
        if self.max_size < self.min_size:
            raise ValueError("max_size must be at least min_size")
        return self


class AppSettings(BaseModel):
    """The whole configuration of one app (all its worker processes share it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    architecture: Variant = "isolated"
    #: per service (isolated design): its pool through its own link, as its own role
    databases: dict[str, PoolSettings] = Field(default_factory=dict)
    #: the one shared pool of the legacy design
    legacy_database: PoolSettings | None = None
    #: superuser DSN to create roles and schemas and apply migrations at start (optional)
    admin_dsn: str | None = None
    #: seconds a service method may take before its boundary answers 503 (isolated design)
    service_timeout: float = Field(default=10.0, gt=0)

    admin_token: str = Field(min_length=16)
    token_secret: str = Field(min_length=16)
    fault_api: bool = False

    payments_url: str = "http://127.0.0.1:1"
    #: the provider's API key and the secret its IPN callbacks are signed with: required,
    #: like the admin token (a default would be a secret every install shares)
    payments_api_key: str = Field(min_length=8)
    ipn_secret: str = Field(min_length=8)
    #: the app's own URL as the provider reaches it, for IPN callbacks
    public_url: str = "http://127.0.0.1:8080"
    provider_timeout: float = Field(default=5.0, gt=0)
    #: connections the provider's HTTP client may open at once (its own; the price
    #: source's client has its own too)
    provider_connections: int = Field(default=20, ge=1)

    prices_url: str = "http://127.0.0.1:1"
    prices_timeout: float = Field(default=3.0, gt=0)
    prices_connections: int = Field(default=10, ge=1)
    #: seconds between two polls of the price source by the background feed; None: no feed,
    #: swap and express ask the source on every quote (each answer checked against the age)
    price_feed_interval: float | None = Field(default=2.0, gt=0)
    #: seconds after which a price (by its source's ``as_of``) is stale: nothing is priced on it
    price_max_age: float = Field(default=30.0, gt=0)
    #: seconds the feed's price history is kept in the background schema
    price_history_seconds: float = Field(default=86_400.0, gt=0)

    #: seconds after which a deposit still ``waiting`` for its payment expires
    deposit_expiry_seconds: float = Field(default=86_400.0, gt=0)
    #: seconds between two runs of each scheduled job (the first run one interval after start)
    expire_deposits_every: float = Field(default=60.0, gt=0)
    expire_quotes_every: float = Field(default=15.0, gt=0)
    expire_trades_every: float = Field(default=15.0, gt=0)
    prune_price_history_every: float = Field(default=3600.0, gt=0)

    currencies: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_CURRENCIES))
    p2p_fee_rate: Decimal = Field(default=Decimal("0.01"), ge=0, lt=1)
    swap_spread: Decimal = Field(default=Decimal("0.005"), ge=0, lt=1)
    swap_fee_rate: Decimal = Field(default=Decimal("0.002"), ge=0, lt=1)
    quote_ttl_seconds: float = Field(default=30.0, gt=0)
    trade_ttl_seconds: float = Field(default=900.0, gt=0)
    #: seconds a ``paid`` trade waits for its seller's release before it goes to dispute
    trade_release_seconds: float = Field(default=86_400.0, gt=0)
    #: trades a buyer may have under way at once (pending, open or paid)
    max_open_trades: int = Field(default=10, ge=1)
    express_markup: Decimal = Field(default=Decimal("0.01"), ge=0, lt=1)
    express_quote_ttl_seconds: float = Field(default=30.0, gt=0)

    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    def pools(self) -> dict[str, PoolSettings]:
        """The pools this design opens, by name: one per service, or the legacy one."""
        if self.architecture == "legacy":
            assert self.legacy_database is not None  # checked by the validator
            return {LEGACY_POOL: self.legacy_database}
        return dict(self.databases)

    @model_validator(mode="after")
    def _databases(self) -> AppSettings:
        if self.architecture == "isolated":
            missing = [s for s in SERVICES if s not in self.databases]
            if missing:
                raise ValueError(f"databases: no pool settings for {', '.join(missing)}")
        elif self.legacy_database is None:
            raise ValueError("legacy_database: required when architecture is legacy")
        return self

    @model_validator(mode="after")
    def _price_feed(self) -> AppSettings:
        interval = self.price_feed_interval
        if interval is not None and self.price_max_age <= interval:
            raise ValueError(
                f"price_max_age ({self.price_max_age:g} s) must exceed price_feed_interval "
                f"({interval:g} s), or every price would be stale before the next poll"
            )
        return self

    @classmethod
    def from_file(cls, path: Path) -> AppSettings:
        """Settings from a JSON file (written by the harness)."""
        return cls.model_validate_json(path.read_text())
