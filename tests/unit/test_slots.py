"""The places of ``harness suite --jobs N`` go by rank, whichever thread asks first."""

from __future__ import annotations

import threading

from isolation_harness.chaos.cli.runs import _Slots
from isolation_harness.chaos.interruption import Interruption


def test_a_later_rank_waits_for_an_expected_earlier_one_whose_thread_has_not_asked() -> None:
    slots, interruption = _Slots(1), Interruption()
    slots.expect([(0, 1), (1, 1), (2, 1)])
    assert slots.take((0, 1), interruption)
    slots.give_back()  # rank 0 ends at once: the place is free, rank 1 has not asked yet
    got: list[bool] = []
    late = threading.Thread(target=lambda: got.append(slots.take((2, 1), interruption)))
    late.start()
    late.join(timeout=0.5)
    assert late.is_alive(), "rank 2 took the place that rank 1 is expected to take first"
    assert slots.take((1, 1), interruption)
    slots.give_back()
    late.join(timeout=10)
    assert got == [True]


def test_an_interruption_frees_the_waiting() -> None:
    slots, interruption = _Slots(1), Interruption()
    slots.expect([(0, 1), (1, 1)])
    result: list[bool] = []
    waiting = threading.Thread(target=lambda: result.append(slots.take((1, 1), interruption)))
    waiting.start()
    interruption.interrupt()
    waiting.join(timeout=10)
    assert result == [False]


def _taker(slots: _Slots, rank: tuple[int, int], *, alone: bool = False) -> threading.Thread:
    thread = threading.Thread(
        target=lambda: slots.take(rank, Interruption(), alone=alone), daemon=True
    )
    thread.start()
    return thread


def test_a_run_alone_waits_for_every_other_run_to_be_over_winding_down_included() -> None:
    slots, interruption = _Slots(2), Interruption()
    slots.expect([(0, 1), (1, 1)])
    assert slots.take((0, 1), interruption)
    slots.give_back()  # its timeline ended: its place is free, but it is still winding down
    alone = _taker(slots, (1, 1), alone=True)
    alone.join(timeout=0.5)
    assert alone.is_alive(), "the run alone started beside a run still winding down"
    slots.done()
    alone.join(timeout=10)
    assert not alone.is_alive()


def test_no_run_starts_beside_a_run_alone_until_its_timeline_ends() -> None:
    slots, interruption = _Slots(2), Interruption()
    slots.expect([(0, 1), (1, 1)])
    assert slots.take((0, 1), interruption, alone=True)
    other = _taker(slots, (1, 1))
    other.join(timeout=0.5)
    assert other.is_alive(), "a run started beside the run alone, with a place free of two"
    slots.give_back(alone=True)  # every place comes back at once
    other.join(timeout=10)
    assert not other.is_alive()


def test_the_runs_after_a_waiting_run_alone_do_not_overtake_it() -> None:
    slots, interruption = _Slots(2), Interruption()
    slots.expect([(0, 1), (1, 1), (2, 1)])
    assert slots.take((0, 1), interruption)
    alone = _taker(slots, (1, 1), alone=True)
    later = _taker(slots, (2, 1))
    later.join(timeout=0.5)
    assert later.is_alive(), "a later run took the free place the run alone waits for"
    slots.give_back()
    slots.done()
    alone.join(timeout=10)
    assert not alone.is_alive()
    assert later.is_alive()  # the run alone holds every place now
    slots.give_back(alone=True)
    later.join(timeout=10)
    assert not later.is_alive()
