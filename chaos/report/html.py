"""HTML reports: one page per run (``report.html`` beside its journal), a suite's index, two
runs compared, a plain load run. Rendered from journals (or a load result), never from live
state, through the jinja2 templates beside this module.

Every page stands alone: its styles and its charts (SVG from :mod:`chaos.report.charts`) are
inside it, it loads nothing and runs no script, so a CI artifact opens offline.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from isolation_harness.chaos.errors import EXIT_LABELS, worst
from isolation_harness.chaos.report import charts
from isolation_harness.chaos.report.journal import read_journal
from isolation_harness.chaos.report.repetition import closest, repetition
from isolation_harness.chaos.report.summary import cost_line, margin_text, number

REPORT_NAME = "report.html"
INDEX_NAME = "index.html"
#: the invariants' counts a reader looks for first: money lost or made up
LOSSES = ("lost", "unexpected", "duplicated", "indeterminate", "credited_twice",
          "uncredited", "wrong_amount", "credits_without_payment")  # fmt: skip


@functools.cache
def _env() -> Environment:
    """The templates' environment, made once, when the first page is rendered."""
    env = Environment(
        loader=PackageLoader("isolation_harness.chaos.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=number,
        margin=margin_text,
        percent=_percent,
        ratio=lambda v: "-" if v is None else f"{v:.2f}x",
        utc=_utc,
        seconds=lambda v: "-" if v is None else f"{v:.1f} s",
        label=lambda code: EXIT_LABELS.get(int(code), f"exit {code}"),
        outcome=_outcome,
    )
    return env


def _percent(value: float | None, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value * 100:+.1f}%" if signed else f"{value * 100:.1f}%"


def _utc(stamp: float | None) -> str:
    if not stamp:
        return "-"
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _outcome(code: int) -> str:
    """The CSS class of an exit code."""
    return {0: "pass", 3: "invalid"}.get(int(code), "fail")


def _svg(text: str) -> Markup:
    return Markup(text)  # noqa: S704 - matplotlib's own SVG output, not user input


# ---------------------------------------------------------------------------------------
# one run


def matrix(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The blast-radius matrix of one run: its faulted phases (rows) x request groups."""
    groups = sorted({name for row in rows for name in row["cells"]})
    return {"groups": groups, "rows": list(rows)}


def run_page(journal: Mapping[str, Any], *, title: str | None = None) -> str:
    """The page of one run, from its journal."""
    data = dict(journal)
    timeline = charts.timeline_svg(charts.run_of(data), name="timeline")
    return (
        _env()
        .get_template("run.html.j2")
        .render(
            title=title or f"{data['scenario']['name']} [{data['variant']}]",
            run=data,
            timeline=_svg(timeline),
            has_series=bool((data.get("series") or {}).get("groups")),
            bucket=f"{(data.get('series') or {}).get('bucket_s', 1.0):g}",
            matrix=matrix(data.get("blast_radius") or []),
            costs=cost_line(data),
            losses=LOSSES,
            scenario_yaml=json.dumps(data["scenario"], indent=2),
        )
    )


def write_run_report(journal_path: Path, journal: Mapping[str, Any] | None = None) -> Path:
    """``report.html`` beside ``journal_path`` (read from it unless ``journal`` is given)."""
    data = journal if journal is not None else read_journal(journal_path)
    target = journal_path.parent / REPORT_NAME
    target.write_text(run_page(data))
    return target


# ---------------------------------------------------------------------------------------
# a suite


@dataclass
class Entry:
    """One scenario and variant of a suite: its runs' journals and where they are."""

    journals: list[dict[str, Any]]
    paths: list[Path]


def index_page(entries: Sequence[Entry], folder: Path) -> str:
    """The suite's index: a row per scenario and variant (outcome, pass rate, the closest
    threshold's margins, its reports), and the library's matrix: scenario x request group,
    each cell the worst its faulted phases did to that group in the run shown."""
    rows: list[dict[str, Any]] = []
    for entry in entries:
        figures = repetition(entry.journals, requested=len(entry.journals), paths=entry.paths)
        shown = _worst_run(entry.journals)
        rows.append({
            "figures": figures,
            "closest": closest(figures["thresholds"]),
            "reports": [_relative(p.parent / REPORT_NAME, folder) for p in entry.paths],
            "shown": shown,
            "cells": _library_cells(entry.journals[shown]),
        })  # fmt: skip
    groups = sorted({g for row in rows for g in row["cells"]})
    codes = [int(r["figures"]["exit_code"]) for r in rows]
    return _env().get_template("index.html.j2").render(
        title="scenario suite", rows=rows, groups=groups, exit_code=worst(codes),
        runs=sum(r["figures"]["runs"] for r in rows),
    )  # fmt: skip


def write_index(entries: Sequence[Entry], folder: Path) -> Path:
    target = folder / INDEX_NAME
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(index_page(entries, folder))
    return target


def _worst_run(journals: Sequence[Mapping[str, Any]]) -> int:
    """The run a suite's matrix shows: the first with the scenario's worst exit code."""
    codes = [int(j["exit_code"]) for j in journals]
    return codes.index(worst(codes))


def _library_cells(journal: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per request group, the worst of its cells over the run's faulted phases: hit if any
    phase hit it, the largest error-rate change and p99 ratio, the services named."""
    cells: dict[str, dict[str, Any]] = {}
    for row in journal.get("blast_radius") or []:
        for group, cell in row["cells"].items():
            into = cells.setdefault(group, {"hit": False, "target": False, "change": None,
                                            "ratio": None, "named": set()})  # fmt: skip
            into["hit"] |= bool(cell["hit"])
            into["target"] |= bool(cell["target"])
            into["change"] = _largest(into["change"], cell["error_rate_change"])
            into["ratio"] = _largest(into["ratio"], cell["p99_ratio"])
            into["named"] |= set(cell["named"])
    return cells


def _largest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _relative(path: Path, folder: Path) -> str:
    return Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()


# ---------------------------------------------------------------------------------------
# two runs


def compare_page(a: Mapping[str, Any], b: Mapping[str, Any], labels: tuple[str, str]) -> str:
    """Two runs side by side: their timelines overlaid and every metric's delta per phase
    and request name (B - A), with both verdicts."""
    overlay = charts.compare_svg(charts.run_of(dict(a)), charts.run_of(dict(b)),
                                 name="compare", labels=labels)  # fmt: skip
    return _env().get_template("compare.html.j2").render(
        title=f"{labels[0]} vs {labels[1]}", a=a, b=b, labels=labels, overlay=_svg(overlay),
        deltas=deltas(a, b), thresholds=threshold_deltas(a, b), figures=DELTA_FIGURES,
    )  # fmt: skip


#: the per-phase figures ``compare`` lists, with how each is shown
DELTA_FIGURES = (("count", "num"), ("rps", "num"), ("error_rate", "percent"),
                 ("p50", "num"), ("p99", "num"), ("max", "num"))  # fmt: skip


def deltas(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per phase and request name present in either run: each figure in A and B, and B - A
    (None where one run has no such phase or name)."""
    rows = []
    phases = list(dict.fromkeys([*(a.get("stats") or {}), *(b.get("stats") or {})]))
    for phase in phases:
        left, right = (a.get("stats") or {}).get(phase, {}), (b.get("stats") or {}).get(phase, {})
        for name in sorted(set(left) | set(right)):
            figures = []
            for figure, kind in DELTA_FIGURES:
                x, y = left.get(name, {}).get(figure), right.get(name, {}).get(figure)
                delta = None if x is None or y is None else y - x
                figures.append({"name": figure, "kind": kind, "a": x, "b": y, "delta": delta})
            rows.append({"phase": phase, "name": name, "figures": figures})
    return rows


def threshold_deltas(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every threshold of either run: measured and margin in A and B."""

    def keyed(run: Mapping[str, Any]) -> dict[tuple[str, str, str], Mapping[str, Any]]:
        return {(t["group"], t["phase"], t["expression"]): t
                for t in run["verdicts"]["thresholds"]}  # fmt: skip

    left, right = keyed(a), keyed(b)
    rows = []
    for key in dict.fromkeys([*left, *right]):
        x, y = left.get(key), right.get(key)
        rows.append({"group": key[0], "phase": key[1], "expression": key[2], "a": x, "b": y})
    return rows


# ---------------------------------------------------------------------------------------
# a plain load run


def load_page(result: Mapping[str, Any], series: Mapping[str, Any]) -> str:
    """A load run: its plan, its timeline and the percentiles per request group."""
    run = charts.Run(series=dict(series))
    timeline = charts.timeline_svg(run, name="load", server=False)
    return _env().get_template("load.html.j2").render(
        title=f"load: {result['plan']['users']} users", result=result, timeline=_svg(timeline),
        has_series=bool(series.get("groups")),
    )  # fmt: skip
