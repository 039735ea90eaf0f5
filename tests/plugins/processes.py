"""The processes a test's child started, to check afterwards that none survived."""

from __future__ import annotations

import os
from pathlib import Path

from isolation_harness.chaos.errors import HarnessError
from isolation_harness.chaos.stack.process import ProcessRecord, children_of


def descendants(pid: int) -> list[ProcessRecord]:
    """Every process below ``pid`` now (children, their children…)."""
    found, queue = [], [pid]
    while queue:
        for child in children_of(queue.pop()):
            try:
                found.append(ProcessRecord.of(child))
            except Exception:
                continue
            queue.append(child)
    return found


def with_folder_in_environment(name: str, folder: Path) -> list[int]:
    """Live processes whose environment sets ``name`` to ``folder`` or a folder in it: all
    that a run started, for a run given its own ``TMPDIR`` (the app's is a folder in it),
    recorded anywhere or not."""
    exact, below = f"{name}={folder}".encode(), f"{name}={folder}/".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            record = ProcessRecord.of(int(entry.name))
        except (OSError, HarnessError):
            continue
        if any(v == exact or v.startswith(below) for v in environ) and record.alive():
            found.append(record.pid)
    return found
