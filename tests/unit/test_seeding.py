"""Each simulated user's own random streams, derived from the run's seed and its name."""

from __future__ import annotations

import subprocess
import sys

import pytest

from isolation_harness.load.seeding import DECISIONS, PAUSES, Roster, SimulatedUser, parse_seed


def draws(seed: int, user: SimulatedUser, stream: str = DECISIONS) -> list[float]:
    chance = user.random(seed, stream)
    return [chance.random() for _ in range(5)]


def test_a_users_random_is_the_same_for_the_same_seed_and_name() -> None:
    user = SimulatedUser("deposits", 0, 3)
    assert draws(42, user) == draws(42, SimulatedUser("deposits", 0, 3))
    assert str(user) == "deposits#0.3"


@pytest.mark.parametrize(
    ("seed", "other"),
    [
        (42, SimulatedUser("deposits", 0, 4)),  # the next user of its kind
        (42, SimulatedUser("wallet", 0, 3)),  # another kind
        (42, SimulatedUser("deposits", 1, 3)),  # on another worker
        (43, SimulatedUser("deposits", 0, 3)),  # another seed
    ],
    ids=["ordinal", "kind", "worker", "seed"],
)
def test_a_users_random_differs_for_another_seed_or_name(seed: int, other: SimulatedUser) -> None:
    assert draws(seed, other) != draws(42, SimulatedUser("deposits", 0, 3))


def test_decisions_and_pauses_are_separate_streams() -> None:
    user = SimulatedUser("p2p", 0, 0)
    assert draws(7, user, DECISIONS) != draws(7, user, PAUSES)


def test_the_same_in_another_process() -> None:
    """Derived from the seed and the name alone: not from the process, nor its hash seed."""
    probe = (
        "from isolation_harness.load.seeding import SimulatedUser\n"
        "print(SimulatedUser('swap', 2, 5).random(99, 'decisions').random())\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True,
            env={"PYTHONHASHSEED": hash_seed}, timeout=30,
        ).stdout.strip()
        for hash_seed in ("1", "2")
    }  # fmt: skip
    assert outputs == {str(SimulatedUser("swap", 2, 5).random(99, DECISIONS).random())}


def test_the_roster_numbers_the_users_of_each_kind_in_order() -> None:
    roster = Roster(seed=5)
    names = [str(roster.enlist(kind, 1)) for kind in ("deposits", "p2p", "deposits", "p2p")]
    assert names == ["deposits#1.0", "p2p#1.0", "deposits#1.1", "p2p#1.1"]


def test_parse_seed() -> None:
    assert parse_seed(" 42 ") == 42
    with pytest.raises(ValueError, match="seed 'x' is not a whole number"):
        parse_seed("x")
