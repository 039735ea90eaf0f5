"""Repeated runs of one scenario (``--repeat N``): the pass rate, and how close each threshold
came to its limit over the runs. Pure: journals in, figures out.

A gate that passes 10 times out of 10 with a p99 margin of 2 ms is about to become flaky; one
that passes with 400 ms to spare is not. The *margin* of a threshold in one run is how far the
measured value was from breaching (:func:`chaos.scenario.thresholds.margin_of`); over N runs each
threshold gets the minimum and median of its margins, and the thresholds are sorted so the
one that came closest to its limit, relative to the limit, comes first.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from isolation_harness.chaos.errors import EXIT_PASS, worst

#: what identifies a threshold across runs: source, request group, phase, expression
Key = tuple[str, str, str, str]


def _key(verdict: Mapping[str, Any]) -> Key:
    return (
        str(verdict.get("source", "threshold")),
        str(verdict["group"]),
        str(verdict["phase"]),
        str(verdict["expression"]),
    )


def _spread(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """The minimum and median of the values that exist."""
    present = [v for v in values if v is not None]
    if not present:
        return None, None
    return min(present), float(np.median(present))


def _scaled(margin: float, limit: float | None) -> float:
    """The margin relative to the limit, for sorting: a limit of 0 has no scale, so any
    room over it is infinite and any breach of it infinitely bad (0 stays 0)."""
    if limit:
        return margin / abs(limit)
    return math.copysign(math.inf, margin) if margin else 0.0


def _closest(verdicts: Sequence[Mapping[str, Any] | None]) -> float:
    """The worst relative margin over the runs; +inf when the threshold had none at all."""
    scaled = [
        _scaled(float(v["margin"]), v.get("expected"))
        for v in verdicts
        if v is not None and v.get("margin") is not None
    ]
    return min(scaled, default=math.inf)


def margin_spread(journals: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per threshold (source, group, phase, expression), its margins over the runs.

    ``margins`` and ``relative_margins`` have one entry per run, in run order: None where the
    threshold was not judged in that run (an unjudged failure that did not recur) or had no
    margin (undefined: no samples; or nothing numeric to compare). ``judged`` counts the runs
    that judged it, ``undefined`` those of them without a margin, ``breached`` those where
    it failed. Sorted worst first: by the smallest margin relative to the limit, thresholds
    without any margin last.
    """
    runs = len(journals)
    found: dict[Key, list[Mapping[str, Any] | None]] = {}
    for index, data in enumerate(journals):
        for verdict in data["verdicts"]["thresholds"]:
            found.setdefault(_key(verdict), [None] * runs)[index] = verdict
    rows: list[tuple[float, dict[str, Any]]] = []
    for (source, group, phase, expression), verdicts in found.items():
        judged = [v for v in verdicts if v is not None]
        margins = [None if v is None else v.get("margin") for v in verdicts]
        relatives = [None if v is None else v.get("relative_margin") for v in verdicts]
        low, middle = _spread(margins)
        relative_low, relative_middle = _spread(relatives)
        row = {
            "source": source,
            "group": group,
            "phase": phase,
            "expression": expression,
            "judged": len(judged),
            "breached": sum(1 for v in judged if v.get("defined", True) and not v["passed"]),
            "undefined": sum(1 for v in judged if v.get("margin") is None),
            "margins": margins,
            "relative_margins": relatives,
            "min": low,
            "median": middle,
            "relative_min": relative_low,
            "relative_median": relative_middle,
        }
        rows.append((_closest(verdicts), row))
    rows.sort(key=lambda pair: pair[0])  # stable: ties keep the journal's order
    return [row for _, row in rows]


def closest(thresholds: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """Of :func:`margin_spread`'s rows, the closest to its limit with room to measure: an
    ``== 0`` that held has a margin of 0 in every run, and says nothing of how near a
    breach the gate came."""
    return next((t for t in thresholds if t["relative_min"] is not None), None)


def repetition(
    journals: Sequence[Mapping[str, Any]], *, requested: int, paths: Sequence[Path] = ()
) -> dict[str, Any]:
    """The figures of the runs of one scenario and variant (at least one run).

    A run passes when its exit code is 0 (after ``expect:``). ``exit_code`` is the worst
    over the runs: one failure in N fails the gate. ``runs`` is less than ``requested`` when
    the repetition was interrupted.
    """
    first = journals[0]
    codes = [int(j["exit_code"]) for j in journals]
    passes = codes.count(EXIT_PASS)
    return {
        "scenario": first["scenario"]["name"],
        "variant": first["variant"],
        "source": first.get("source"),
        "expect": first["expect"],
        "requested": requested,
        "runs": len(journals),
        "passes": passes,
        "pass_rate": passes / len(journals),
        "exit_code": worst(codes),
        "exit_codes": codes,
        "seeds": [j["seed"] for j in journals],
        "interrupted": any(j.get("interrupted") for j in journals),
        "journals": [str(p) for p in paths],
        "thresholds": margin_spread(journals),
    }


def write_repetitions(repetitions: Sequence[Mapping[str, Any]], path: Path) -> dict[str, Any]:
    """``repeat.json``: every scenario's figures, and the exit code they add up to."""
    data = {
        "exit_code": worst([int(r["exit_code"]) for r in repetitions]),
        "scenarios": list(repetitions),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))
    return data
