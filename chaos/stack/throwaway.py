"""A stack of its own for a block of code: started in a new state folder, stopped and the
folder removed when the block ends, whatever happened in it.

    with throwaway_stack(Settings.from_env(os.environ)) as (settings, state):
        ...  # settings.state_dir is the stack's folder (for --reuse, HARNESS_STATE_DIR)
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from isolation_harness.chaos.stack.lifecycle import Stack
from isolation_harness.chaos.stack.settings import Settings
from isolation_harness.chaos.stack.state import StackState


@contextlib.contextmanager
def throwaway_stack(
    settings: Settings, prefix: str = "harness-stack-"
) -> Iterator[tuple[Settings, StackState]]:
    """The stack of ``settings`` in a folder of its own: its settings and its state."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)  # the cluster's own user reads its files there
    own = settings.with_overrides(state_dir=folder)
    stack = Stack(own)
    try:
        state, _ = stack.up()
        yield own, state
    finally:
        try:
            stack.down()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
