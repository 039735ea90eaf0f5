"""The network links of the topology (DESIGN §2), each cut-able through its own proxy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Target = Literal["postgres", "payments", "prices"]


@dataclass(frozen=True)
class Link:
    """One Toxiproxy proxy: the traffic of ``service`` to ``target``."""

    name: str
    service: str
    target: Target


LINKS: tuple[Link, ...] = (
    Link("pg_deposits", "deposits", "postgres"),
    Link("pg_wallet", "wallet", "postgres"),
    Link("pg_p2p", "p2p", "postgres"),
    Link("pg_swap", "swap", "postgres"),
    Link("pg_express", "express", "postgres"),
    Link("pg_admin", "admin", "postgres"),
    Link("pg_background", "background", "postgres"),
    # The legacy design's one shared pool: every service's database traffic in one link.
    Link("pg_shared", "legacy", "postgres"),
    Link("payments", "deposits", "payments"),
    Link("prices", "background", "prices"),
)
LINK_NAMES = frozenset(link.name for link in LINKS)


def link_named(name: str) -> Link:
    """The link called ``name``; KeyError names the known ones."""
    for link in LINKS:
        if link.name == name:
            return link
    raise KeyError(f"unknown link {name!r}; known: {', '.join(sorted(LINK_NAMES))}")


#: the legacy design's one link to the database
SHARED_LINK = "pg_shared"


def legacy_refusal(name: str) -> tuple[str, str] | None:
    """Why a fault on link ``name`` is refused in the legacy design (message, hint), or None.

    There every service's database traffic goes through :data:`SHARED_LINK`; a service's own
    ``pg_<service>`` link carries nothing. Cutting it would do nothing, and cutting the
    shared link in its place would cut every service: neither proves anything about
    isolation, so neither is done.
    """
    link = link_named(name)
    if link.target != "postgres" or link.name == SHARED_LINK:
        return None
    return (
        f"link {name} carries no traffic in the legacy design: every service's database "
        f"traffic goes through {SHARED_LINK}, and cutting that instead would cut every "
        "service, which proves nothing about isolation",
        f"confine the fault to {link.service}'s own code (type: service, service: "
        f"{link.service}, mode: hang, slow, leak or raise), or name {SHARED_LINK} for a fault "
        "on every service's database traffic",
    )
