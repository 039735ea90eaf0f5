"""The places of ``harness suite --jobs N`` go by rank, whichever thread asks first."""

from __future__ import annotations

import threading

from chaos.cli.runs import _Slots
from chaos.interruption import Interruption


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
