"""Seeded replay: every random decision of a simulated user comes from a ``Random`` of its own.

A simulated user is named by its kind, its Locust process's worker index and its ordinal
among the users of that kind the process started: ``deposits#0.3`` is the fourth depositor
of worker 0 (a Locust process on its own is worker 0). Its ``Random`` is derived from the
run's seed (``HARNESS_SEED``) and that name alone, never from a process id or a clock, so
with the same seed the same user makes the same decisions in every run and every process:
which task, which currency and amount, which deposit, quote or trade, every coin flip.
Its think times draw from a second stream of their own, so that a pause more or less (a
sign-up retried during a fault) does not shift its decisions.

Locust gives no user an ordinal across processes: with several workers a user is named by
its worker's index, which the master hands out in the order the workers connect, and each
worker runs the users the master sends it. So the same names run again only if every worker
gets the same number of users of each kind (the users of each kind divide evenly among the
workers); a user present in two runs makes the same decisions in both.

What the seed does not replay: timing (how many requests fit into a run, which answer comes
first), the app's answers (a refusal or a failure during a fault changes what a user does
next), what users share within a process (the disputes an admin finds, the liquidity
express buyers draw on), and identities: usernames, Idempotency-Keys and operation ids are
fresh uuid4s in every run, since they name things and decide nothing.

No Locust here: ``load/users/seeded.py`` puts this into the users.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass

#: the stream of a user's decisions (tasks, amounts, choices) and that of its think times
DECISIONS = "decisions"
PAUSES = "pauses"


@dataclass(frozen=True)
class SimulatedUser:
    """One simulated user of a run: ``kind#worker.ordinal`` (``str()``)."""

    kind: str
    worker: int
    ordinal: int

    def __str__(self) -> str:
        return f"{self.kind}#{self.worker}.{self.ordinal}"

    def random(self, seed: int, stream: str) -> random.Random:
        """This user's own ``Random`` for ``stream`` in the run seeded with ``seed``."""
        digest = hashlib.sha256(f"{seed}/{self}/{stream}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))


class Roster:
    """Names the simulated users of one Locust process, in the order it creates them."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._started: Counter[str] = Counter()

    def enlist(self, kind: str, worker: int) -> SimulatedUser:
        """The next user of ``kind`` in this process (worker ``worker``)."""
        ordinal = self._started[kind]
        self._started[kind] += 1
        return SimulatedUser(kind, worker, ordinal)


def parse_seed(text: str) -> int:
    """``"42"`` -> 42; ValueError says what is wrong."""
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"seed {text!r} is not a whole number") from None


def random_seed() -> int:
    """A seed for a run that was given none (what ``harness run`` records)."""
    return random.randrange(2**31)
