"""How ``make test`` spreads the suite over its workers: the heavy tests first, at most one
per core at a time, and the light ones beside them.

A heavy test runs a whole stack and a load generator (a scenario, a benchmark, a load run):
about two thirds of a core for twenty seconds, most of it waiting for its timeline. Two at
once keep two cores busy without saturating them (the scenarios' verdicts, measured by
``bench/stability.py``); a third would. So ``make test`` starts two workers more than
there are cores, and the heavy tests share :data:`HEAVY_SLOTS` slots (file locks, across
the workers): the extra workers run the light tests meanwhile (API, integration, unit, the
stack commands), which took eight minutes of a worker's time, much of it waiting on the
processes they start.

xdist's ``worksteal`` (``make test``) first hands each worker one contiguous share of the
list, then lets an idle worker take the second half of the longest queue. The list is laid
out for that: the heavy tests, longest first, dealt to the first :data:`HEAVY_SLOTS` shares
and filled up with light tests; the last shares are light only. Tests left at the end are
light, so the workers end together (measured before: seven legacy counterparts queued on
one worker after the other had finished, four minutes).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")
#: the files whose tests each run a scenario or a load of many users for seconds (their
#: quick tests, which start no stack, are marked ``light``)
HEAVY = (
    "tests/chaos/test_scenarios.py",
    "tests/chaos/test_broken_builds.py",
    "tests/cli/test_scenario_plugin.py",
    "tests/bench/test_benches.py",
    "tests/load/test_runner.py",
    "tests/cli/test_suite_cli.py",
    "tests/cli/test_repeat_cli.py",
    "tests/cli/test_run_cli.py",
    "tests/packaging/test_plugin_project.py",
    "tests/e2e/test_reports_in_browser.py",
)
#: the files whose tests run a whole scenario, a stack or a load generator each, longest first
LONGEST = (
    *HEAVY,
    # a second of generated requests per operation: twenty seconds of one core alone, three
    # times that beside the rest; started late, it was the suite's last minute
    "tests/api/test_openapi_properties.py",
    "tests/cli/test_environment_cli.py",
    "tests/cli/test_stack_cli.py",
    "tests/cli/test_load_cli.py",
    "tests/load/test_users.py",
    "tests/chaos/test_ctk.py",
    # a short run judged on what it leaves behind only: no slot
    "tests/chaos/test_toxiproxy_python.py",
)
#: heavy tests at once: one per core
HEAVY_SLOTS = len(os.sched_getaffinity(0))


def _path(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def is_heavy(item: pytest.Item) -> bool:
    """A test of a heavy file, unless marked ``light`` (a quick one that starts no stack)."""
    return _path(item) in HEAVY and item.get_closest_marker("light") is None


def _workers(config: pytest.Config) -> int:
    workerinput = getattr(config, "workerinput", None)
    return int(workerinput["workercount"]) if workerinput else 1


def deal(items: list[T], heavy: Callable[[T], bool], workers: int, slots: int) -> list[T]:
    """``items`` laid out for worksteal's first shares: the heavy ones (in their order) dealt
    to the first ``slots`` shares, each share filled up with light ones to the size worksteal
    cuts (what is left divided by the workers left). The light-only shares are filled first,
    so the longest light tests open them and start at once."""
    if workers <= slots:
        return list(items)
    light = [item for item in items if not heavy(item)]
    shares: list[list[T]] = [[] for _ in range(workers)]
    for n, item in enumerate(item for item in items if heavy(item)):
        shares[n % slots].append(item)
    sizes = []
    left = len(items)
    for n in range(workers):  # the sizes worksteal cuts, share by share
        sizes.append(left // (workers - n))
        left -= sizes[-1]
    for index in [*range(slots, workers), *range(slots)]:
        take = max(0, sizes[index] - len(shares[index]))
        shares[index].extend(light[:take])
        del light[:take]
    shares[slots - 1].extend(light)
    return [item for share in shares for item in share]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = _path(item)
        return LONGEST.index(path) if path in LONGEST else len(LONGEST)

    items.sort(key=rank)  # stable: the order within a file stays
    items[:] = deal(items, is_heavy, _workers(config), HEAVY_SLOTS)


@contextlib.contextmanager
def _slot(folder: Path) -> Iterator[None]:
    """Hold one of :data:`HEAVY_SLOTS` slots (a file lock each) until the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    while True:
        for n in range(HEAVY_SLOTS):
            handle = (folder / f"slot-{n}").open("a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield
            finally:
                handle.close()  # and the lock with it
            return
        time.sleep(0.1)


def _slots_folder(controller: int) -> Path:
    """The slots of the run whose controlling pytest process is ``controller``."""
    return Path(tempfile.gettempdir()) / f"harness-test-slots-{controller}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if _workers(item.config) <= HEAVY_SLOTS or not is_heavy(item):
        return (yield)
    with _slot(_slots_folder(os.getppid())):  # an xdist worker is its controller's child
        return (yield)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if getattr(session.config, "workerinput", None) is None:  # the controller
        shutil.rmtree(_slots_folder(os.getpid()), ignore_errors=True)
