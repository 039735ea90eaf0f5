"""What a fault on a link means in each design: the legacy design refuses a service's own
database link (the topology's links are in :mod:`topology.links`)."""

from __future__ import annotations

from topology.links import SHARED_LINK, link_named


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
