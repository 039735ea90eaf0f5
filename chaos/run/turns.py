"""Turns on the machine across processes: a run that needs it to itself goes alone.

``harness suite --jobs N`` keeps its runs in one process and gives them places
(``chaos/cli/runs.py``). ``pytest scenarios/ -n N`` runs them in N worker processes, which
share nothing but the file system: they take turns through a lock file, ``flock(2)``:

    with MachineTurns(path).turn(alone=scenario.alone):
        run the scenario

Every run holds the machine lock shared; a run ``alone`` holds it exclusively, so it
starts once every other run is over and none starts until it is. A turnstile, taken
briefly by every run and held by a run alone while it waits, keeps the runs that come
after it from overtaking it forever (``flock`` itself would let shared holders in ahead).
The locks go with their process: a worker killed mid-run leaves no turn taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


class MachineTurns:
    """Turns taken through ``path`` (and ``path`` with ``.turnstile`` appended)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.turnstile = path.with_name(path.name + ".turnstile")

    @contextlib.contextmanager
    def turn(self, *, alone: bool = False) -> Iterator[None]:
        """Hold a turn on the machine: shared, or the machine to itself (``alone``)."""
        with _opened(self.turnstile) as gate, _opened(self.path) as machine:
            fcntl.flock(gate, fcntl.LOCK_EX)
            try:
                fcntl.flock(machine, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
            finally:
                fcntl.flock(gate, fcntl.LOCK_UN)
            try:
                yield
            finally:
                fcntl.flock(machine, fcntl.LOCK_UN)


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        yield fd
    finally:
        os.close(fd)
