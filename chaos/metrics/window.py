"""The metrics of one request group in one window, measured on demand from its samples.

:class:`GroupWindow` is a read-only mapping from a metric key (``p99``, ``status_503``,
``naming(p2p)``, ``codes``…; the registered metrics, :mod:`chaos.metrics`) to its value. A
value is NaN (or, for ``codes``, absent) when the window holds no sample of the group:
silence is never a zero. Server metrics (the pools of the group's services) come from the
server samples taken during the window, and are NaN without any.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from isolation_harness.chaos.metrics.base import REGISTRY, Measured, lookup
from isolation_harness.load.kinds import service_of
from isolation_harness.load.samples import Sample

NAN = math.nan


class GroupWindow(Mapping[str, Measured]):
    """One request group (a glob) in one window: its samples and what they measure."""

    def __init__(
        self,
        samples: Sequence[Sample],
        seconds: float,
        *,
        services: frozenset[str] = frozenset(),
        targets: frozenset[str] = frozenset(),
        server: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        self.samples = samples
        self.seconds = seconds
        #: the app services the group's requests belong to
        self.services = services
        #: the services the window's faults aim at (a failure naming one is not foreign)
        self.targets = targets
        #: the server samples taken during the window (``chaos.run.server``)
        self.server = server
        self.failed = [s for s in samples if s.failed]
        self._cache: dict[str, Measured] = {}
        self._latencies: Any = None

    # -- the mapping ------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Measured:
        if key not in self._cache:
            found, argument = lookup(key)  # KeyError for a key that names no metric
            if not found.server and not self.samples:
                self._cache[key] = NAN
            else:
                self._cache[key] = found.measure(self, argument)
        return self._cache[key]

    def __iter__(self) -> Iterator[str]:
        return iter(m.name for m in REGISTRY.values() if not m.takes_argument and not m.suffix)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @property
    def count(self) -> int:
        return len(self.samples)

    def latencies(self) -> Any:
        """The samples' latencies (ms) as a numpy array, made once."""
        if self._latencies is None:
            self._latencies = np.fromiter(
                (s.latency_ms for s in self.samples), dtype=np.float64, count=len(self.samples)
            )
        return self._latencies


def services_of(names: Sequence[str]) -> frozenset[str]:
    """The app services that answer these request names."""
    return frozenset(s for s in (service_of(n) for n in names) if s is not None)
