"""How many of a group's requests did what: counts, the throughput, the most in flight."""

from __future__ import annotations

from collections.abc import Sequence

from isolation_harness.chaos.metrics.base import Measured, metric
from isolation_harness.chaos.metrics.window import GroupWindow
from isolation_harness.load.samples import Sample


@metric("count", "count")
def count(window: GroupWindow, argument: str | None) -> Measured:
    return float(len(window.samples))


@metric("failures", "count")
def failures(window: GroupWindow, argument: str | None) -> Measured:
    return float(len(window.failed))


@metric("rps", "throughput")
def rps(window: GroupWindow, argument: str | None) -> Measured:
    return len(window.samples) / window.seconds


@metric("unstructured_5xx", "count")
def unstructured_5xx(window: GroupWindow, argument: str | None) -> Measured:
    """5xx answers whose body is not the app's error shape exactly."""
    return float(sum(1 for s in window.failed if s.status >= 500 and not s.structured))


@metric("timeouts", "count")
def timeouts(window: GroupWindow, argument: str | None) -> Measured:
    return float(sum(1 for s in window.samples if s.timed_out))


@metric("connection_errors", "count")
def connection_errors(window: GroupWindow, argument: str | None) -> Measured:
    return float(sum(1 for s in window.samples if s.connection_failed))


@metric("in_flight_max", "count")
def in_flight(window: GroupWindow, argument: str | None) -> Measured:
    return float(in_flight_max(window.samples))


@metric("status", "count", suffix=r"[1-5]\d\d")
def status(window: GroupWindow, argument: str | None) -> Measured:
    """``status_503``: answers with that HTTP status."""
    return float(sum(1 for s in window.samples if str(s.status) == argument))


def in_flight_max(samples: Sequence[Sample]) -> int:
    """The most of ``samples`` in flight at once (each from its start to its end)."""
    events = sorted(
        [(s.start, 1) for s in samples] + [(s.end, -1) for s in samples],
        key=lambda event: (event[0], event[1]),  # an end before a start at the same instant
    )
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most
