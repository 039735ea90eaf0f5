import pytest

from isolation_harness.topology.links import LINK_NAMES, LINKS, link_named


def test_every_service_has_its_own_database_link() -> None:
    services = [link.service for link in LINKS if link.target == "postgres"]
    assert sorted(services) == sorted(set(services))
    assert set(services) == {
        "deposits", "wallet", "p2p", "swap", "express", "admin", "background", "legacy",
    }  # fmt: skip


def test_provider_links_lead_to_their_fakes() -> None:
    assert link_named("payments").target == "payments"
    assert link_named("prices").target == "prices"
    assert len(LINK_NAMES) == len(LINKS) == 10


def test_unknown_link_lists_known_ones() -> None:
    with pytest.raises(KeyError, match="pg_p2p"):
        link_named("pg_nope")
