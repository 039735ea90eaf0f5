"""How a load run is shown and saved: a table per request group, JSON, CSV, an HTML page."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from rich.table import Table

from isolation_harness.chaos.report.html import load_page
from isolation_harness.load.operations import outcome_counts
from isolation_harness.load.runner import LoadResult
from isolation_harness.load.series import time_series
from isolation_harness.load.stats import GroupStats


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def stats_table(stats: dict[str, GroupStats], title: str = "requests") -> Table:
    """Count, rps, error rate, p50, p95, p99 and max (ms) per request group."""
    table = Table(title=title, title_justify="left")
    for column in ("group", "count", "rps", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for name, group in stats.items():
        errors = f"{group.error_rate:.2%}" if group.count else "-"
        style = "bold" if name == "*" else ("red" if group.failures else "")
        table.add_row(
            "all" if name == "*" else name,
            str(group.count),
            f"{group.rps:.1f}",
            errors,
            _ms(group.p50),
            _ms(group.p95),
            _ms(group.p99),
            _ms(group.max),
            style=style,
        )
    return table


def result_json(result: LoadResult) -> dict[str, object]:
    plan = result.plan
    return {
        "plan": {
            "host": plan.host, "users": plan.users, "spawn_rate": plan.spawn_rate,
            "duration": plan.duration, "mix": dict(plan.mix), "workers": plan.workers,
        },
        "started_at": result.started_at,
        "ended_at": result.ended_at,
        "saturated": result.saturated,
        "samples": len(result.samples),
        "operations": outcome_counts(result.operations),
        "groups": {name: _finite(g.as_dict()) for name, g in result.stats().items()},
    }  # fmt: skip


def _finite(values: dict[str, object]) -> dict[str, object]:
    """NaN (an empty group) is not JSON: write null."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in values.items()}


def write_json(result: LoadResult, path: Path) -> None:
    path.write_text(json.dumps(result_json(result), indent=2))


def write_html(result: LoadResult, path: Path) -> None:
    """The run's page: its timeline from every sample, and its percentiles per group."""
    page = load_page(result_json(result), time_series(result.samples, result.started_at))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)


def write_csv(result: LoadResult, prefix: str) -> list[Path]:
    """``PREFIX_stats.csv`` (per group) and ``PREFIX_samples.csv`` (every request)."""
    stats_path = Path(f"{prefix}_stats.csv")
    samples_path = Path(f"{prefix}_samples.csv")
    with stats_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["group", "count", "failures", "rps", "error_rate", "p50_ms", "p95_ms",
                         "p99_ms", "max_ms", "mean_ms"])  # fmt: skip
        for name, g in result.stats().items():
            writer.writerow([name, g.count, g.failures, f"{g.rps:.3f}", f"{g.error_rate:.6f}",
                             g.p50, g.p95, g.p99, g.max, g.mean])  # fmt: skip
    with samples_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["start", "name", "latency_ms", "status", "failed", "error_code",
                         "error_service"])  # fmt: skip
        for s in result.samples:
            writer.writerow([f"{s.start:.6f}", s.name, s.latency_ms, s.status, int(s.failed),
                             s.error_code or "", s.error_service or ""])  # fmt: skip
    return [stats_path, samples_path]
