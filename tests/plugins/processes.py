"""The processes a test's child started, to check afterwards that none survived."""

from __future__ import annotations

from chaos.process import ProcessRecord, children_of


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
