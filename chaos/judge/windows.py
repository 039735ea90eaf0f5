"""Which requests a verdict looks at: the phase a request belongs to, and windows in a phase.

**The phase of a request** is the phase in which it started, with two exceptions for a
request still in flight when the next phase applied its faults: it belongs to that next
phase if its own phase had no faults (it met the fault, and must not count against the
steady state before it), or if it failed naming a target of the next phase's faults that
its own phase's faults do not target (a P2P call begun while deposits were broken, that
met P2P's own fault applied meanwhile). Otherwise a request that started under a fault
stays in that fault's phase, even when it ended after the fault was reverted or the next
phase's fault was applied: the failure it shows is the fault's own, and is judged there,
never silently elsewhere.

**Windows** cut a faulted phase at the moment its faults stopped acting (``restored``:
the revert, or for a restart or crash the moment the database accepted connections):

- ``outage``: the whole phase;
- ``outage@faulted``: the phase's requests that started before its faults stopped acting;
- ``outage@restored``: those that started after;
- ``outage@restored+2s``: those that started at least 2 s after ("every service serves
  again within 2 s" is ``error_rate == 0`` there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from isolation_harness.chaos.scenario.windows import Window
from isolation_harness.load.samples import Sample

if TYPE_CHECKING:  # the scenario model parses windows, and the evidence holds a scenario
    from isolation_harness.chaos.judge.evidence import PhaseRecord


def assign(samples: Sequence[Sample], phases: Sequence[PhaseRecord]) -> dict[str, list[Sample]]:
    """The samples of each phase (see the module docstring); those outside every phase (the
    ramp-up before the first, the tail after the last) belong to none."""
    found: dict[str, list[Sample]] = {p.name: [] for p in phases}
    for sample in samples:
        for index, phase in enumerate(phases):
            if not phase.start <= sample.start < phase.end:
                continue
            chosen = phase
            following = phases[index + 1] if index + 1 < len(phases) else None
            if (
                following is not None
                and following.faulted
                and sample.end > following.start
                and (not phase.faulted or _met(sample, following, phase))
            ):
                chosen = following
            found[chosen.name].append(sample)
            break
    return found


def _met(sample: Sample, following: PhaseRecord, phase: PhaseRecord) -> bool:
    """Whether ``sample`` failed naming a target of ``following``'s faults that ``phase``'s
    faults do not target: it met the next fault, not its own."""
    if not sample.failed or sample.error_service is None:
        return False
    theirs = {f.target for f in following.faults}
    ours = {f.target for f in phase.faults}
    if None in ours:  # its own fault hit every service
        return False
    return sample.error_service in theirs and sample.error_service not in ours


def select(
    window: Window, phase: PhaseRecord, samples: Sequence[Sample]
) -> tuple[list[Sample], float] | None:
    """The samples of ``phase`` (already assigned to it) inside ``window``, and the window's
    length in seconds; None when the window does not exist in this run (the phase has no
    fault, or its faults never stopped acting)."""
    if window.anchor is None:
        return list(samples), max(phase.end - phase.start, 1e-9)
    restored = phase.restored_at
    if restored is None:
        return None
    if window.anchor == "faulted":
        return [s for s in samples if s.start < restored], max(restored - phase.start, 1e-9)
    start = restored + window.offset
    if start >= phase.end:
        return None
    return [s for s in samples if s.start >= start], phase.end - start
