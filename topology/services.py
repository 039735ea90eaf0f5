"""The services of the reference backend, its design variants, its database and roles."""

from __future__ import annotations

from typing import Literal, get_args

#: The services of the isolated design; each has its own pool, link, schema and role.
SERVICES: tuple[str, ...] = (
    "deposits", "wallet", "p2p", "swap", "express", "admin", "background",
)  # fmt: skip

#: the app's design: every service isolated, or the old one (one shared pool, no boundaries)
Variant = Literal["isolated", "legacy"]
VARIANTS: tuple[Variant, ...] = get_args(Variant)
DEFAULT_VARIANT: Variant = "isolated"

#: the name of the legacy design's one pool, which serves every service
LEGACY_POOL = "shared"
#: the database every service's schema lives in
APP_DATABASE = "exchange"
#: the legacy design's one role, member of every service's role
LEGACY_ROLE = "app_legacy"


def role_of(service: str) -> str:
    """The database role of ``service``."""
    return f"svc_{service}"
