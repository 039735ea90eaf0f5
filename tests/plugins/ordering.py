"""The longest tests first, so that the workers end together.

xdist's ``worksteal`` (the Makefile's ``make test``) gives each worker half the list and
lets an idle one take from the other's queue; the tests left at the end must be short, or
one worker runs the last scenarios alone while the other waits (four minutes, measured:
seven legacy counterparts queued on one worker after the other had finished).
"""

from __future__ import annotations

import pytest

#: the files whose tests run a whole scenario, a stack or a load generator each
LONGEST = (
    "tests/chaos/test_scenarios.py",
    "tests/chaos/test_broken_builds.py",
    "tests/cli/test_scenario_plugin.py",
    "tests/bench/test_benches.py",
    "tests/load/test_runner.py",
    "tests/cli/test_suite_cli.py",
    "tests/cli/test_repeat_cli.py",
    "tests/cli/test_stack_cli.py",
    "tests/cli/test_load_cli.py",
    "tests/cli/test_run_cli.py",
    "tests/load/test_users.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONGEST.index(path) if path in LONGEST else len(LONGEST)

    items.sort(key=rank)  # stable: the order within a file stays
