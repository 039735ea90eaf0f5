"""A new invariant is one function registered by name: scenario files name it, the runner
checks it after the run, the judge's exit code and reasons carry it, with nothing else to
change. Two are defined here: one that holds, and one that a correct build breaks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from isolation_harness.chaos.errors import EXIT_INVARIANT, ConfigError
from isolation_harness.chaos.invariants import REGISTRY, Facts, InvariantResult, invariant
from isolation_harness.chaos.run.runner import run_scenario
from isolation_harness.chaos.scenario.loader import load_scenario
from isolation_harness.chaos.scenario.model import Scenario
from tests.plugins.preflight import test_settings

HOLDS = "users_have_wallets"
BROKEN = "no_user_signed_up"


@pytest.fixture
def trivial_invariants() -> Iterator[None]:
    """Two invariants defined here and nowhere else, checked on the app's own tables."""

    @invariant(HOLDS, needs={"wallet"})
    def users_have_wallets(found: Facts) -> InvariantResult:
        """Every signed-up user has an account (a user is given one as they sign up)."""
        users = found.rows("SELECT count(*) FROM wallet.users")[0][0]
        bare = found.rows(
            "SELECT u.id FROM wallet.users u WHERE NOT EXISTS "
            "(SELECT 1 FROM wallet.accounts a WHERE a.owner = u.id::text)"
        )
        return InvariantResult.of(HOLDS, int(users), [f"user {u} has no account" for (u,) in bare])

    @invariant(BROKEN)
    def no_user_signed_up(found: Facts) -> InvariantResult:
        """A rule every run with users breaks: each user is a violation."""
        users = found.rows("SELECT id FROM wallet.users ORDER BY id")
        return InvariantResult.of(BROKEN, len(users), [f"user {u} signed up" for (u,) in users])

    try:
        yield
    finally:
        REGISTRY.pop(HOLDS, None)
        REGISTRY.pop(BROKEN, None)


SCENARIO = {
    "name": "new-invariants",
    "load": {"users": 4, "spawn_rate": 4, "mix": {"wallet": 1}},
    "timeline": [{"phase": "steady", "duration": "2s"}],
    "thresholds": "none",
    "invariants": [HOLDS, BROKEN, "ledger_balanced"],
    "min_checked": {HOLDS: 4},
}


@pytest.mark.usefixtures("trivial_invariants")
def test_an_invariant_defined_in_a_test_file_is_checked_end_to_end() -> None:
    scenario = Scenario.model_validate(SCENARIO)
    record = asyncio.run(run_scenario(scenario, test_settings().with_overrides(app_workers=1)))
    results = {r.name: r for r in record.outcome.invariants}
    assert list(results) == [HOLDS, BROKEN, "ledger_balanced"]
    assert results[HOLDS].passed, results[HOLDS].violations
    assert results[HOLDS].checked >= 4  # every user of the load signed up
    assert not results[BROKEN].passed
    assert len(results[BROKEN].violations) == results[BROKEN].checked >= 4
    assert results["ledger_balanced"].passed
    # the broken one fails the run as any money invariant would: exit 2, saying what broke
    assert record.outcome.exit_code() == EXIT_INVARIANT, record.outcome.reasons()
    assert any(
        r.startswith(f"invariant {BROKEN}: user ") and "signed up" in r
        for r in record.outcome.reasons()
    ), record.outcome.reasons()


@pytest.mark.usefixtures("trivial_invariants")
def test_a_scenario_names_a_new_invariant_as_it_names_the_others(tmp_path: Path) -> None:
    # left out, every invariant the mix can exercise is checked: the new one with wallets
    left_out = {k: v for k, v in SCENARIO.items() if k not in ("invariants", "min_checked")}
    mixed = Scenario.model_validate(left_out)
    assert HOLDS in mixed.checked_invariants
    deposits = {**left_out, "load": {**SCENARIO["load"], "mix": {"deposits": 1}}}  # type: ignore[dict-item]
    without = Scenario.model_validate(deposits)
    assert HOLDS not in without.checked_invariants
    assert BROKEN in without.checked_invariants  # it needs no kind of user
    # named with a mix that cannot exercise it: refused where it is written
    text = (
        "name: x\nload: {users: 1, spawn_rate: 1, mix: {deposits: 1}}\n"
        "timeline: [{phase: a, duration: 1s}]\nthresholds: none\n"
        f"invariants: [{HOLDS}]\n"
    )
    (tmp_path / "x.yaml").write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_scenario(tmp_path / "x.yaml")
    assert "x.yaml:5" in str(refused.value), refused.value
    assert f"{HOLDS} would check nothing" in str(refused.value), refused.value


@pytest.mark.usefixtures("trivial_invariants")
def test_an_invariant_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match=f"invariant '{HOLDS}' is registered already"):
        invariant(HOLDS)(lambda found: InvariantResult.of(HOLDS, 0, []))
    with pytest.raises(ValueError, match="'acknowledged_deposits_exist' is registered already"):
        invariant("other", aliases=("acknowledged_deposits_exist",))(
            lambda found: InvariantResult.of("other", 0, [])
        )
    assert "other" not in REGISTRY
