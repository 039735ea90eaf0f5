"""What a metric is: a name a threshold writes (``p99``, ``status_503``, ``naming(p2p)``),
the kind of quantity it is, and how it is measured on one request group in one window
(:class:`~chaos.metrics.window.GroupWindow`).

A new metric is one module that defines its measure and registers it:

    @metric("p75", "latency")
    def p75(window: GroupWindow, argument: str | None) -> Measured:
        return float(np.percentile(window.latencies(), 75))

imported by :mod:`chaos.metrics` (a test registers one from its own file, the same way),
and its line in ``docs/scenarios.md``. Threshold expressions may then use it, with the
units, references and margins of its kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from isolation_harness.chaos.metrics.window import GroupWindow

Kind = Literal["latency", "rate", "throughput", "count", "set"]
#: what a metric measures: a number, NaN when undefined, or a set of names (``codes``)
Measured = float | frozenset[str]
Measure = Callable[["GroupWindow", "str | None"], Measured]

_ARGUMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Metric:
    """One registered metric."""

    name: str
    kind: Kind
    measure: Measure
    #: measured on the server samples (the pools), so defined without any client sample
    server: bool = False
    #: written with an argument, ``naming(p2p)``: the measure gets ``p2p``
    takes_argument: bool = False
    #: written as ``name_<digits>``, ``status_503``: the measure gets ``503`` (a regular
    #: expression for what follows ``name_``)
    suffix: str | None = None

    @property
    def written(self) -> str:
        """How a threshold writes it, for error messages."""
        if self.takes_argument:
            return f"{self.name}(...)"
        if self.suffix is not None:
            return f"{self.name}_<NNN>"
        return self.name


#: every metric by name, in the order they were registered
REGISTRY: dict[str, Metric] = {}


def metric(
    name: str,
    kind: Kind,
    *,
    server: bool = False,
    takes_argument: bool = False,
    suffix: str | None = None,
) -> Callable[[Measure], Measure]:
    """Register the decorated measure as the metric ``name``."""

    def register(measure: Measure) -> Measure:
        if name in REGISTRY:
            raise ValueError(f"metric {name!r} is registered already")
        REGISTRY[name] = Metric(name, kind, measure, server, takes_argument, suffix)
        return measure

    return register


def lookup(key: str) -> tuple[Metric, str | None]:
    """The metric a key names and its argument: ``p99`` -> (p99, None), ``naming(p2p)`` ->
    (naming, ``p2p``), ``status_503`` -> (status, ``503``); KeyError if none."""
    found = REGISTRY.get(key)
    if found is not None and not found.takes_argument and found.suffix is None:
        return found, None
    name, paren, rest = key.partition("(")
    if paren:
        found = REGISTRY.get(name)
        if (
            found is not None
            and found.takes_argument
            and rest.endswith(")")
            and _ARGUMENT.fullmatch(rest[:-1])
        ):
            return found, rest[:-1]
        raise KeyError(key)
    name, underscore, rest = key.rpartition("_")
    found = REGISTRY.get(name) if underscore else None
    if found is not None and found.suffix is not None and re.fullmatch(found.suffix, rest):
        return found, rest
    raise KeyError(key)


def kind_of(key: str) -> Kind:
    """The kind of quantity a metric key measures; KeyError if it names no metric."""
    return lookup(key)[0].kind


def takes_argument(name: str) -> bool:
    """Whether the metric ``name`` is written with an argument, ``naming(p2p)``."""
    found = REGISTRY.get(name)
    return found is not None and found.takes_argument


def plain() -> dict[str, Kind]:
    """The metrics written as a bare name, and their kinds."""
    return {m.name: m.kind for m in REGISTRY.values() if not m.takes_argument and m.suffix is None}


def written() -> list[str]:
    """Every metric as a threshold writes it (``p99``, ``status_<NNN>``, ``naming(...)``)."""
    return [m.written for m in REGISTRY.values()]
