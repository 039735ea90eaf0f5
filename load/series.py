"""The requests of a run over time: per request group and time bucket, how many, how many
failed, and their p50 and p99, from every kept sample; what the reports' timelines draw.

A request group is the app service a request calls (``deposits.create`` -> ``deposits``),
the same groups as the blast-radius matrix's columns; health probes belong to none. A
sample counts in the bucket it started in. Buckets are a second long up to two minutes of
run; longer runs get longer buckets, so that a timeline has at most :data:`MAX_BUCKETS`
points per series whatever the run's length (and the journal stays small).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from isolation_harness.load.kinds import service_of
from isolation_harness.load.samples import Sample

MAX_BUCKETS = 120


def bucket_seconds(span: float) -> float:
    """The bucket length for ``span`` seconds of samples: 1 s, or longer for long runs."""
    return float(max(1, math.ceil(span / MAX_BUCKETS)))


def time_series(samples: Sequence[Sample], origin: float) -> dict[str, Any]:
    """Per group and bucket: ``count``, ``failures``, ``p50`` and ``p99`` (ms, None for an
    empty bucket); ``t`` holds each bucket's start in seconds from ``origin`` (the first
    phase's start: the ramp before it has negative times)."""
    if not samples:
        return {"origin": origin, "bucket_s": 1.0, "t": [], "groups": {}}
    starts = np.fromiter((s.start for s in samples), dtype=np.float64, count=len(samples))
    latencies = np.fromiter((s.latency_ms for s in samples), dtype=np.float64, count=len(samples))
    failed = np.fromiter((s.failed for s in samples), dtype=bool, count=len(samples))
    first = math.floor(float(starts.min()) - origin)
    span = float(starts.max()) - origin - first
    size = bucket_seconds(span)
    buckets = int(span // size) + 1
    index = np.minimum(((starts - origin - first) // size).astype(np.int64), buckets - 1)
    groups: dict[str, Any] = {}
    names = [service_of(s.name) for s in samples]
    for group in sorted({name for name in names if name is not None}):
        mine = np.fromiter((name == group for name in names), dtype=bool, count=len(names))
        count = np.bincount(index[mine], minlength=buckets)
        failures = np.bincount(index[mine & failed], minlength=buckets)
        p50: list[float | None] = [None] * buckets
        p99: list[float | None] = [None] * buckets
        order = np.argsort(index[mine], kind="stable")
        sorted_index, sorted_latency = index[mine][order], latencies[mine][order]
        bounds = np.searchsorted(sorted_index, np.arange(buckets + 1))
        for bucket in range(buckets):
            chunk = sorted_latency[bounds[bucket] : bounds[bucket + 1]]
            if chunk.size:
                low, high = np.percentile(chunk, [50, 99])
                p50[bucket], p99[bucket] = round(float(low), 3), round(float(high), 3)
        groups[group] = {
            "count": count.tolist(),
            "failures": failures.tolist(),
            "p50": p50,
            "p99": p99,
        }
    return {
        "origin": origin,
        "bucket_s": size,
        "t": [first + bucket * size for bucket in range(buckets)],
        "groups": groups,
    }
