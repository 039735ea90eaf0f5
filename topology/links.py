"""The network links of the topology (DESIGN §2), each cut-able through its own proxy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from isolation_harness.topology.services import LEGACY_POOL, SERVICES

Target = Literal["postgres", "payments", "prices"]


@dataclass(frozen=True)
class Link:
    """One Toxiproxy proxy: the traffic of ``service`` to ``target``."""

    name: str
    service: str
    target: Target


def database_link(service: str) -> str:
    """The link of ``service``'s pool to PostgreSQL (``shared``: the legacy design's)."""
    return f"pg_{service}"


#: the legacy design's one link to the database
SHARED_LINK = database_link(LEGACY_POOL)

LINKS: tuple[Link, ...] = (
    *(Link(database_link(service), service, "postgres") for service in SERVICES),
    # The legacy design's one shared pool: every service's database traffic in one link.
    Link(SHARED_LINK, "legacy", "postgres"),
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
