"""Users whose every random decision replays from the run's seed (``load/seeding.py``).

Locust draws from the global ``random`` module: the task a user runs next
(``random.choice`` over its weighted tasks) and the pause of ``between()``. A
:class:`SeededUser` takes both from streams of its own instead, and gives its subclasses
``self.random`` for every other decision. Each request it makes carries its name in
Locust's request context (``{"user": "deposits#0.3"}``), which the recorder keeps in the
sample (``load/samples.py``).
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

from locust import User
from locust.env import Environment
from locust.user.task import DefaultTaskSet

from isolation_harness.load.kinds import kind_of
from isolation_harness.load.seeding import DECISIONS, PAUSES, Roster, SimulatedUser, random_seed

_ROSTER_ATTRIBUTE = "harness_roster"


def use_roster(environment: Environment, roster: Roster) -> None:
    """Name the users of this Locust process with ``roster`` (its seed)."""
    setattr(environment, _ROSTER_ATTRIBUTE, roster)


def roster_of(environment: Environment) -> Roster:
    """The process's roster; without one (users run outside the locustfile), an unseeded one."""
    found = getattr(environment, _ROSTER_ATTRIBUTE, None)
    if isinstance(found, Roster):
        return found
    roster = Roster(random_seed())
    use_roster(environment, roster)
    return roster


def _worker_index(environment: Environment) -> int:
    # A local runner is worker 0; a worker learns its index from the master before it
    # is sent any user.
    return int(getattr(environment.runner, "worker_index", 0))


class SeededUser(User):
    """A user drawing every decision and every pause from its own streams."""

    abstract = True
    #: (min, max) seconds of the pause between two tasks
    think_time: ClassVar[tuple[float, float]] = (0.0, 0.0)

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        roster = roster_of(environment)
        self.simulated: SimulatedUser = roster.enlist(
            kind_of(type(self).__name__), _worker_index(environment)
        )
        self.label = str(self.simulated)
        #: every decision of this user: tasks, amounts, currencies, choices, coin flips
        self.random: random.Random = self.simulated.random(roster.seed, DECISIONS)
        self._pauses = self.simulated.random(roster.seed, PAUSES)

    def on_start(self) -> None:
        # Locust's task loop (made just before on_start) picks tasks from the global
        # random; this one picks them from the user's own.
        self._taskset_instance = _SeededTasks(self)

    def next_task(self) -> Any:
        """The task this user runs next, chosen by weight with its own ``random``."""
        return self.random.choice(self.tasks)

    def wait_time(self) -> float:
        """The pause before the next task: within :attr:`think_time`, from its own stream."""
        low, high = self.think_time
        return low + self._pauses.random() * (high - low)

    def context(self) -> dict[str, Any]:
        """Locust's request context of this user's requests: its name, for the samples."""
        return {"user": self.label}


class _SeededTasks(DefaultTaskSet):
    """Locust's loop over a user's tasks, choosing the next with the user's ``random``."""

    def get_next_task(self) -> Any:
        user = self.user
        if not isinstance(user, SeededUser) or not user.tasks:
            return super().get_next_task()  # type: ignore[no-untyped-call]  # Locust's error
        return user.next_task()
