"""How ``make test`` lays out the suite for its workers (tests/plugins/ordering.py)."""

from __future__ import annotations

from typing import cast

import pytest

from tests.plugins.ordering import deal, is_heavy


def shares(items: list[str], workers: int) -> list[list[str]]:
    """The contiguous shares xdist's worksteal hands out first."""
    out, left = [], list(items)
    for n in range(workers):
        size = len(left) // (workers - n)
        out.append(left[:size])
        del left[:size]
    return out


def test_heavy_tests_open_the_first_shares_one_per_slot_and_the_last_is_light() -> None:
    items = [f"H{n}" for n in range(5)] + [f"l{n}" for n in range(25)]
    laid = deal(items, lambda i: i.startswith("H"), workers=3, slots=2)
    assert sorted(laid) == sorted(items)
    first, second, last = shares(laid, 3)
    assert first[:3] == ["H0", "H2", "H4"]  # longest first, dealt in turn
    assert second[:2] == ["H1", "H3"]
    assert not [i for i in last if i.startswith("H")]
    assert last[0] == "l0"  # the longest light test opens a light-only share, at once
    assert [i for i in last + first + second if i.startswith("l")] == [f"l{n}" for n in range(25)]


def test_as_many_slots_as_workers_keeps_the_order() -> None:
    items = ["H0", "l0", "H1", "l1"]
    assert deal(items, lambda i: i.startswith("H"), workers=2, slots=2) == items


class Stub:
    """What ``is_heavy`` reads of a collected test."""

    def __init__(self, nodeid: str, *markers: str) -> None:
        self.nodeid = nodeid
        self.markers = markers

    def get_closest_marker(self, name: str) -> object | None:
        return name if name in self.markers else None


def test_a_test_of_a_heavy_file_is_heavy_unless_marked_light() -> None:
    def heavy(nodeid: str, *markers: str) -> bool:
        return is_heavy(cast(pytest.Item, Stub(nodeid, *markers)))

    assert heavy("tests/chaos/test_scenarios.py::test_isolated_design_passes[postgres-crash]")
    assert not heavy("tests/cli/test_run_cli.py::test_a_crash_of_the_harness", "light")
    assert not heavy("tests/unit/test_ordering.py::test_as_many_slots_as_workers_keeps_the_order")
