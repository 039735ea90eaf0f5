"""Every isolation claim has a legacy counterpart fit to stand for it, and the legacy design
refuses faults that would prove nothing (a service's own database link)."""

from __future__ import annotations

from pathlib import Path

import pytest

from isolation_harness.chaos.scenario.loader import load_scenario, validate_files

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))
COUNTERPARTS = sorted((ROOT / "scenarios" / "legacy").glob("*.yaml"))

CLAIM = """\
name: claim
load: {users: 4, spawn_rate: 4, mix: {deposits: 1, p2p: 1}}
timeline:
  - {phase: baseline, duration: 2s}
  - phase: outage
    duration: 2s
    faults: [{type: service, service: p2p, mode: raise}]
thresholds: none
legacy:
  counterpart: other.yaml
"""

COUNTERPART = """\
name: other
variant: legacy
load: {users: 4, spawn_rate: 4, mix: {deposits: 1, p2p: 1}}
timeline:
  - {phase: baseline, duration: 2s}
  - phase: outage
    duration: 2s
    faults: [FAULT]
thresholds: none
expect: {fail: [{isolation: SERVICE, phase: outage}]}
"""


def write(folder: Path, claim: str, counterpart: str | None) -> Path:
    (folder / "claim.yaml").write_text(claim)
    if counterpart is not None:
        (folder / "other.yaml").write_text(counterpart)
    return folder / "claim.yaml"


def problems_of(path: Path) -> list[str]:
    return [str(p) for p in validate_files([path])]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_scenario_says_how_legacy_fails_it(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.variant == "isolated"
    assert scenario.legacy is not None, f"{path.name}: name a counterpart or say no_claim"
    if scenario.isolation_claims:
        assert scenario.legacy.counterpart is not None


@pytest.mark.parametrize("path", COUNTERPARTS, ids=lambda p: p.stem)
def test_every_counterpart_is_claimed_by_a_shipped_scenario(path: Path) -> None:
    claimed = {
        (ROOT / "scenarios" / s.legacy.counterpart).resolve()
        for s in map(load_scenario, SHIPPED)
        if s.legacy is not None and s.legacy.counterpart is not None
    }
    assert path.resolve() in claimed
    assert load_scenario(path).variant == "legacy"


def test_a_fit_counterpart_is_accepted(tmp_path: Path) -> None:
    good = COUNTERPART.replace("FAULT", "{type: service, service: p2p, mode: raise}")
    assert problems_of(write(tmp_path, CLAIM, good.replace("SERVICE", "deposits"))) == []


@pytest.mark.parametrize(
    ("fault", "service", "problem"),
    [
        # the failure named is the target's own: it proves nothing about the others
        ("{type: service, service: p2p, mode: raise}", "p2p", "a service its faults do not"),
        # a fault on the shared link or the database hits every service
        ("{type: link_down, link: pg_shared}", "deposits", "hits every service"),
        ("{type: db_restart}", "deposits", "hits every service"),
        # the per-service link carries nothing in the legacy design
        ("{type: link_down, link: pg_p2p}", "deposits", "carries no traffic in the legacy"),
    ],
)
def test_an_unfit_counterpart_is_refused(
    tmp_path: Path, fault: str, service: str, problem: str
) -> None:
    bad = COUNTERPART.replace("FAULT", fault).replace("SERVICE", service)
    found = problems_of(write(tmp_path, CLAIM, bad))
    assert found
    assert all(f.startswith(f"{tmp_path / 'claim.yaml'}:10: legacy.counterpart: ") for f in found)
    assert any(problem in f for f in found), found


def test_a_counterpart_on_the_isolated_design_is_refused(tmp_path: Path) -> None:
    fault = "{type: service, service: p2p, mode: raise}"
    bad = COUNTERPART.replace("variant: legacy\n", "").replace("FAULT", fault)
    bad = bad.replace("SERVICE", "deposits")
    [found] = problems_of(write(tmp_path, CLAIM, bad))
    assert "must run on the legacy design" in found


def test_a_missing_counterpart_is_named(tmp_path: Path) -> None:
    [found] = problems_of(write(tmp_path, CLAIM, None))
    assert f"no such scenario file: {tmp_path / 'other.yaml'}" in found


def test_a_claim_cannot_say_it_makes_none(tmp_path: Path) -> None:
    claim = CLAIM.replace("counterpart: other.yaml", "no_claim: nothing to see")
    [found] = problems_of(write(tmp_path, claim, None))
    assert ":10: legacy.no_claim: this scenario judges isolation in outage" in found


def test_a_legacy_scenario_may_not_fault_a_services_own_database_link(tmp_path: Path) -> None:
    text = COUNTERPART.replace("FAULT", "{type: toxic, link: pg_p2p, toxic: latency}").replace(
        "SERVICE", "deposits")  # fmt: skip
    (tmp_path / "legacy.yaml").write_text(text)
    [found] = problems_of(tmp_path / "legacy.yaml")
    assert found.startswith(f"{tmp_path / 'legacy.yaml'}:8: timeline[1].faults[0].link: link "
                            "pg_p2p carries no traffic in the legacy design")  # fmt: skip
