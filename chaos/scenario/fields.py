"""The vocabulary of a scenario file: its invariants' names (those registered in
:mod:`chaos.invariants`) and the field types its parts share (durations, think times,
thresholds, strict numbers)."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
)

from isolation_harness.chaos import invariants
from isolation_harness.chaos.errors import FieldProblem
from isolation_harness.chaos.scenario.thresholds import Threshold, parse_threshold
from isolation_harness.topology.durations import parse_duration


def invariant_name(value: object) -> str:
    """A registered invariant's name (an older name stands for the invariant it names)."""
    if not isinstance(value, str):
        raise ValueError(f"an invariant is named by a string, not {value!r}")  # noqa: TRY004 - pydantic reports ValueError
    found = invariants.canonical(value)
    if found is None:
        raise ValueError(f"unknown invariant {value!r}: one of {', '.join(invariants.names())}")
    return found


#: the name of a registered invariant (:mod:`chaos.invariants`), as its canonical name
Invariant = Annotated[str, PlainValidator(invariant_name)]


IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def name_matching(pattern: re.Pattern[str], name: str, what: str, rule: str) -> str:
    """``name`` if ``pattern`` matches all of it, else "<what> name 'x' must be <rule>"."""
    if not pattern.fullmatch(name):
        raise ValueError(f"{what} name {name!r} must be {rule}")
    return name


def duration(value: object) -> float:
    """Seconds, from ``"10s"``, ``"1m30s"``, ``"500ms"`` or a plain number of seconds."""
    if isinstance(value, str):
        if value.strip().startswith("-"):
            raise ValueError(f"duration {value!r} must be positive")
        return parse_duration(value)  # a DurationError is the ValueError pydantic reports
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"duration {value!r} must be a positive number of seconds")
        return float(value)
    raise ValueError(f"a duration is e.g. 10s, 2m, 1m30s or 500ms, not {value!r}")


def pause(value: object) -> float:
    """Seconds, as a duration, where 0 (``0s``, ``0``) is allowed."""
    if isinstance(value, str) and value.strip() in ("0", "0s", "0ms"):
        return 0.0
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
        return 0.0
    return duration(value)


def think_time_of(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise ValueError("think_time is one duration or [min, max], e.g. [0s, 300ms]")
        low, high = pause(value[0]), pause(value[1])
    else:
        low = high = pause(value)
    if low > high:
        raise ValueError(f"think_time: min {low:g}s is above max {high:g}s")
    return (low, high)


def threshold_field(value: object) -> Threshold:
    if not isinstance(value, str):
        raise ValueError(f"a threshold is a string such as 'p99 < 250ms', not {value!r}")  # noqa: TRY004 - pydantic reports ValueError
    return parse_threshold(value)


Seconds = Annotated[float, BeforeValidator(duration)]


ThresholdExpr = Annotated[Threshold, PlainValidator(threshold_field), PlainSerializer(str)]


StrictInt = Annotated[int, Field(strict=True)]


StrictFloat = Annotated[float, Field(strict=True)]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def unique(values: tuple[Any, ...], what: str) -> None:
    seen: set[Any] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise FieldProblem(f"{what} {value!r} given twice", index)
        seen.add(value)
