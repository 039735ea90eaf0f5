"""The turns a session's scenarios take on the machine: with xdist workers, a scenario that
needs the machine to itself (``alone: true``) runs with no other scenario beside it
(:mod:`chaos.run.turns`). The lock files live in a folder the controller makes and removes,
and each worker is told where it is."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from isolation_harness.chaos.run.turns import MachineTurns

#: the turns of this session's scenarios on the machine
TURNS = pytest.StashKey[MachineTurns]()
#: the key of ``workerinput`` that tells an xdist worker where the turns are taken
TURNS_INPUT = "harness_turns"


def start(config: pytest.Config) -> None:
    """The controller makes the folder and tells the workers; a worker takes its path."""
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None:  # an xdist worker: its controller made the folder
        if TURNS_INPUT in workerinput:
            config.stash[TURNS] = MachineTurns(Path(workerinput[TURNS_INPUT]))
        return
    folder = Path(tempfile.mkdtemp(prefix="harness-turns-"))
    config.stash[TURNS] = MachineTurns(folder / "machine.lock")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_TurnsToWorkers(config.stash[TURNS]))


def end(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and TURNS in config.stash:
        shutil.rmtree(config.stash[TURNS].path.parent, ignore_errors=True)


class _TurnsToWorkers:
    """Tells each xdist worker where the turns are taken (xdist's own hook)."""

    def __init__(self, turns: MachineTurns) -> None:
        self.turns = turns

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[TURNS_INPUT] = str(self.turns.path)
