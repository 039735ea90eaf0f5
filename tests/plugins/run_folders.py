"""The throw-away folders of runs started by a test, and what is still running in them."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from isolation_harness.chaos.errors import StackBusy
from isolation_harness.chaos.stack import postgres
from isolation_harness.chaos.stack.lifecycle import Stack
from isolation_harness.chaos.stack.process import ProcessRecord
from isolation_harness.chaos.stack.state import STATE_FILE, StackState
from tests.plugins.preflight import test_settings

#: what a run leaves in its TMPDIR while it runs: its state folder, its load's samples folder
#: and the warden's log when a run with ``--reuse`` is cut short
RUN_LITTER = ("harness-run-*", "harness-load-*", "harness-warden-*")


@pytest.fixture
def temp_root() -> Iterator[Path]:
    """The runs' TMPDIR: their state folders land here (under /tmp, which the ``postgres``
    user can enter), and whatever is still running in one afterwards is stopped."""
    folder = Path(tempfile.mkdtemp(prefix="harness-test-runs-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        deadline = time.monotonic() + 60
        for state in folder.glob(f"harness-run-*/{STATE_FILE}"):
            stack = Stack(test_settings().with_overrides(state_dir=state.parent))
            while True:
                try:
                    stack.down()
                    break
                except StackBusy:  # the run's warden is stopping it: wait for it
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        shutil.rmtree(folder, ignore_errors=True)


def running_stack(root: Path) -> StackState | None:
    """The state of a run's stack under ``root`` once its app is recorded."""
    for path in root.glob(f"harness-run-*/{STATE_FILE}"):
        with contextlib.suppress(OSError, ValueError):
            state = StackState.model_validate_json(path.read_text())
            if state.app is not None:
                return state
    return None


def postmaster(state: StackState) -> ProcessRecord:
    """The stack's PostgreSQL server, which is nobody's child (``pg_ctl`` detaches it)."""
    assert state.postgres is not None
    assert state.postgres.data_dir is not None
    pid = int((state.postgres.data_dir / "postmaster.pid").read_text().split()[0])
    return ProcessRecord.of(pid)


def litter(root: Path) -> list[str]:
    """What runs left in ``root``, and the RAM folders of their clusters."""
    found = [path.name for pattern in RUN_LITTER for path in root.glob(pattern)]
    return sorted(found + [home.name for home in ram_folders(root)])


def ram_folders(root: Path) -> list[Path]:
    """The clusters' RAM folders (``postgres.data_folder``) of stacks whose state folder is
    (or was) under ``root``."""
    found = []
    for owner in postgres.RAM_ROOT.glob(f"{postgres.RAM_PREFIX}*/owner"):
        with contextlib.suppress(OSError):
            if Path(owner.read_text()).is_relative_to(root.resolve()):
                found.append(owner.parent)
    return found


def assert_no_litter(root: Path, timeout: float = 10.0) -> None:
    """Nothing of a run is left in ``root`` within ``timeout`` seconds (a warden removes the
    folders after it has stopped the processes)."""
    deadline = time.monotonic() + timeout
    while litter(root) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not litter(root), f"left behind: {litter(root)}"
