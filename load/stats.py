"""Exact statistics per request group, from every sample (numpy; no rounding like Locust's)."""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from isolation_harness.load.samples import Sample

PERCENTILES = (50, 90, 95, 99)


@dataclass(frozen=True)
class Window:
    """A time window ``[start, end)`` in epoch seconds; a sample belongs by its start time."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"empty window {self.start}..{self.end}")

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def holds(self, sample: Sample) -> bool:
        return self.start <= sample.start < self.end


@dataclass(frozen=True)
class GroupStats:
    """What clients saw of one request group in one window."""

    name: str
    count: int
    failures: int
    rps: float
    error_rate: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    mean: float
    #: failures by ``<service>:<code>`` (or ``http:<status>`` / ``client:<timeout|connection>``
    #: when the body named none)
    errors: dict[str, int] = field(default_factory=dict)
    #: 5xx failures answered without the app's error shape exactly (e.g. a bare 500)
    unstructured_5xx: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name, "count": self.count, "failures": self.failures,
            "rps": self.rps, "error_rate": self.error_rate, "p50": self.p50, "p90": self.p90,
            "p95": self.p95,
            "p99": self.p99, "max": self.max, "mean": self.mean, "errors": self.errors,
            "unstructured_5xx": self.unstructured_5xx,
        }  # fmt: skip


def in_window(samples: Iterable[Sample], window: Window | None) -> list[Sample]:
    """The samples that started inside ``window`` (all of them without one)."""
    return [s for s in samples if window is None or window.holds(s)]


def matching(samples: Iterable[Sample], pattern: str) -> list[Sample]:
    """The samples whose name matches a glob such as ``deposits.*``."""
    return [s for s in samples if fnmatch.fnmatchcase(s.name, pattern)]


def group_stats(name: str, samples: Sequence[Sample], seconds: float) -> GroupStats:
    """Statistics of ``samples`` over ``seconds`` of run time.

    Latency percentiles use numpy's default (linear interpolation) over every successful
    and failed request alike: a failure that took 2 s was 2 s of waiting for the client.
    """
    if not samples:
        nan = float("nan")
        return GroupStats(name, 0, 0, 0.0, nan, nan, nan, nan, nan, nan, nan)
    latencies = np.fromiter((s.latency_ms for s in samples), dtype=np.float64, count=len(samples))
    p50, p90, p95, p99 = (float(v) for v in np.percentile(latencies, PERCENTILES))
    failed = [s for s in samples if not s.ok]
    errors = Counter(error_key(s) for s in failed)
    unstructured = sum(1 for s in failed if s.status >= 500 and not s.structured)
    return GroupStats(
        name=name,
        count=len(samples),
        failures=len(failed),
        rps=len(samples) / seconds if seconds > 0 else 0.0,
        error_rate=len(failed) / len(samples),
        p50=p50,
        p90=p90,
        p95=p95,
        p99=p99,
        max=float(latencies.max()),
        mean=float(latencies.mean()),
        errors=dict(errors.most_common()),
        unstructured_5xx=unstructured,
    )


def by_group(samples: Sequence[Sample], seconds: float) -> dict[str, GroupStats]:
    """Statistics per request name, plus ``*`` for all requests together."""
    names = sorted({s.name for s in samples})
    result = {n: group_stats(n, [s for s in samples if s.name == n], seconds) for n in names}
    result["*"] = group_stats("*", samples, seconds)
    return result


def error_key(sample: Sample) -> str:
    """How a failure is named in reports: ``service:code``, ``http:500``, or the transport."""
    if sample.error_code is not None:
        service = sample.error_service or "?"
        return f"{service}:{sample.error_code}"
    if sample.transport_error is not None:
        return f"client:{sample.transport_error}"
    return f"http:{sample.status}"
