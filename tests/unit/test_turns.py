"""Turns on the machine across processes (``chaos/run/turns.py``): each turn opens the lock
files itself, so threads here conflict as xdist workers do."""

from __future__ import annotations

import threading
from pathlib import Path

from isolation_harness.chaos.run.turns import MachineTurns


class Holder:
    """A thread that takes a turn and holds it until told to let go."""

    def __init__(self, turns: MachineTurns, *, alone: bool = False) -> None:
        self.taken = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._hold, args=(turns, alone), daemon=True)
        self.thread.start()

    def _hold(self, turns: MachineTurns, alone: bool) -> None:
        with turns.turn(alone=alone):
            self.taken.set()
            self.release.wait(timeout=30)

    def let_go(self) -> None:
        self.release.set()
        self.thread.join(timeout=10)


def test_shared_turns_go_together_and_a_turn_alone_waits_for_them(tmp_path: Path) -> None:
    turns = MachineTurns(tmp_path / "machine.lock")
    first, second = Holder(turns), Holder(turns)
    assert first.taken.wait(10)
    assert second.taken.wait(10)  # two runs side by side
    alone = Holder(turns, alone=True)
    assert not alone.taken.wait(0.5), "the run alone started beside two others"
    first.let_go()
    assert not alone.taken.wait(0.3), "the run alone started beside one other"
    second.let_go()
    assert alone.taken.wait(10)
    alone.let_go()


def test_no_turn_starts_beside_a_turn_alone(tmp_path: Path) -> None:
    turns = MachineTurns(tmp_path / "machine.lock")
    alone = Holder(turns, alone=True)
    assert alone.taken.wait(10)
    other = Holder(turns)
    assert not other.taken.wait(0.5), "a run started beside the run alone"
    alone.let_go()
    assert other.taken.wait(10)
    other.let_go()


def test_later_shared_turns_do_not_overtake_a_waiting_turn_alone(tmp_path: Path) -> None:
    turns = MachineTurns(tmp_path / "machine.lock")
    running = Holder(turns)
    assert running.taken.wait(10)
    alone = Holder(turns, alone=True)
    assert not alone.taken.wait(0.3)
    later = Holder(turns)  # without the turnstile, flock would let it in beside ``running``
    assert not later.taken.wait(0.5), "a later run went ahead of the run alone waiting"
    running.let_go()
    assert alone.taken.wait(10)
    assert not later.taken.wait(0.3)
    alone.let_go()
    assert later.taken.wait(10)
    later.let_go()
