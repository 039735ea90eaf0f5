"""The console summary of a run, rendered from its journal."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

_COLOURS = {0: "green", 1: "red", 2: "red", 3: "yellow", 4: "red"}


def number(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def margin_text(margin: float | None, relative: float | None) -> str:
    """``+50 (+20%)``: the margin in the threshold's unit, and as a share of its limit."""
    if margin is None:
        return "-"
    text = f"{margin:+.4g}" if margin else "0"
    return text if relative is None else f"{text} ({relative:+.0%})"


def print_summary(data: dict[str, Any], console: Console) -> None:
    verdicts = data["verdicts"]
    title = escape(f"{data['scenario']['name']} [{data['variant']}]")
    table = Table(title=title, title_justify="left")
    for column in ("check", "where", "measured", "expected", "margin", "result"):
        table.add_column(column)
    for t in verdicts["thresholds"]:
        if not t.get("defined", True):
            result = "[yellow]UNDEFINED[/yellow]"
        else:
            result = "[green]ok[/green]" if t["passed"] else "[red]BREACHED[/red]"
        table.add_row(
            t["expression"], f"{t['group']} / {t['phase']} ({t['samples']} req)",
            number(t["measured"]), number(t["expected"]),
            margin_text(t.get("margin"), t.get("relative_margin")), result,
        )  # fmt: skip
    for i in verdicts["invariants"]:
        detail = "" if i["passed"] else "; ".join(i["violations"][:2])
        counted = ", ".join(f"{k} {n}" for k, n in i.get("counts", {}).items() if n)
        table.add_row(
            f"invariant {i['name']}", counted or f"{i['checked']} checked", detail, "", "",
            "[green]ok[/green]" if i["passed"] else "[red]VIOLATED[/red]",
        )  # fmt: skip
    for v in verdicts["validity"]:
        if not v["passed"]:
            table.add_row(v["name"], "", v["detail"], "", "", "[yellow]INVALID[/yellow]")
    for e in verdicts.get("expectations", []):
        table.add_row(
            f"must fail: {e['name']}", "", e["detail"], "", "",
            "[green]failed as expected[/green]" if e["happened"] else "[red]DID NOT FAIL[/red]",
        )  # fmt: skip
    console.print(table)
    print_blast_radius(data.get("blast_radius", []), console)
    for error in verdicts["harness_errors"]:
        console.print(f"[red]harness error[/red]: {error}")
    for reason in data.get("reasons", [])[:5]:
        console.print(f"  {reason}", markup=False, highlight=False)
    colour = _COLOURS[data["exit_code"]]
    expected = " (failure expected)" if data["expect"] == "fail" else ""
    console.print(
        f"[bold {colour}]{data['result']}[/bold {colour}]{expected} — exit {data['exit_code']}, "
        f"seed {data['seed']}, {data['load']['samples']} requests"
    )
    costs = cost_line(data)
    if costs:
        console.print(costs, markup=False, highlight=False, soft_wrap=True)
    if data.get("replay"):
        # One line, however long: a command to copy.
        console.print(f"replay: {data['replay']}", markup=False, highlight=False, soft_wrap=True)


def cost_line(data: dict[str, Any]) -> str | None:
    """``time: 34.2 s = 26 s of phases + 8.2 s fixed (stack up 3.9, ramp 2.0, …)``: the
    run's wall time, and what it spent beyond its judged phases, step by step."""
    wall, fixed = data.get("wall_seconds"), data.get("fixed_cost_seconds")
    if wall is None or fixed is None:
        return None
    judged = wall - fixed
    steps = dict(data.get("step_seconds") or {})
    if "phases" in steps:
        steps["phases"] -= judged  # their overrun: the judged seconds are counted apart
    parts = []
    for name, seconds in steps.items():
        label = name.replace("_", " ")
        parts.append(f"{label} {seconds:+.1f}" if name == "phases" else f"{label} {seconds:.1f}")
    detail = ", ".join(parts)
    return f"time: {wall:.1f} s = {round(judged, 1):g} s of phases + {fixed:.1f} s fixed" + (
        f" ({detail})" if detail else ""
    )


def wall_line(wall: float, journals: Sequence[dict[str, Any]], jobs: int = 1) -> str:
    """``wall time: 291.4 s for 17 runs (judged phases 413 s, fixed costs 128.2 s; 2 at
    once)``: a command's wall time, and what its runs spent in and beyond their phases."""
    timed = [j for j in journals if j.get("wall_seconds") is not None]
    fixed = sum(float(j["fixed_cost_seconds"]) for j in timed)
    judged = sum(float(j["wall_seconds"]) for j in timed) - fixed
    runs = f"{len(journals)} run{'s' if len(journals) != 1 else ''}"
    parallel = f"; {jobs} at once" if jobs > 1 else ""
    return (
        f"wall time: {wall:.1f} s for {runs} (judged phases {round(judged, 1):g} s, fixed costs "
        f"{fixed:.1f} s{parallel})"
    )


def print_blast_radius(rows: list[dict[str, Any]], console: Console) -> None:
    """Faulted phases x services: the error rate's change, the p99 ratio, whom failures named."""
    if not rows:
        return
    services = sorted({name for row in rows for name in row["cells"]})
    table = Table(
        title="blast radius (error rate change · p99 ratio · named)", title_justify="left"
    )
    table.add_column("fault")
    for service in services:
        table.add_column(service)
    for row in rows:
        cells = []
        for service in services:
            cell = row["cells"].get(service)
            if cell is None:
                cells.append("-")
                continue
            change = cell["error_rate_change"]
            ratio = cell["p99_ratio"]
            text = (
                f"{'-' if change is None else f'{change * 100:+.1f}%'} · "
                f"{'-' if ratio is None else f'{ratio:.1f}x'}"
            )
            if cell["named"]:
                text += " · " + ",".join(cell["named"])
            style = "bold red" if cell["hit"] else ("yellow" if cell["target"] else "")
            cells.append(f"[{style}]{text}[/{style}]" if style else text)
        table.add_row(f"{row['phase']}: {'; '.join(row['faults'])}", *cells)
    console.print(table)


def print_run_line(data: dict[str, Any], run: int, requested: int, console: Console) -> None:
    """One run of a repetition: its result in one line, and what went wrong if anything."""
    colour = _COLOURS[data["exit_code"]]
    console.print(
        f"  run {run}/{requested}: [{colour}]{data['result']}[/{colour}] — exit "
        f"{data['exit_code']}, seed {data['seed']}, {data['load']['samples']} requests"
        + (f", {data['wall_seconds']:.1f} s" if data.get("wall_seconds") is not None else "")
    )
    for reason in data.get("reasons", [])[:3]:
        console.print(f"    {reason}", markup=False, highlight=False)


def print_repetition(figures: dict[str, Any], console: Console) -> None:
    """The pass rate of repeated runs, and each threshold's margins over them, closest to
    its limit first (:func:`chaos.report.repetition.repetition`)."""
    runs = figures["runs"]
    table = Table(
        title=f"margins over {runs} runs (closest to its limit first)", title_justify="left"
    )
    for column in ("check", "where", "min", "median", "min / limit", "breached", "no margin"):
        table.add_column(column)
    for t in figures["thresholds"]:
        where = f"{t['group']} / {t['phase']}"
        if t["judged"] < runs:
            where += f" (judged in {t['judged']})"
        relative = t["relative_min"]
        table.add_row(
            t["expression"], where, margin_text(t["min"], None), margin_text(t["median"], None),
            "-" if relative is None else f"{relative:+.0%}",
            f"[red]{t['breached']}[/red]" if t["breached"] else "0",
            f"[yellow]{t['undefined']}[/yellow]" if t["undefined"] else "0",
        )  # fmt: skip
    console.print(table)
    seen = Counter(figures["exit_codes"])
    codes = ", ".join(
        f"{code} ({count} run{'s' if count > 1 else ''})" for code, count in sorted(seen.items())
    )
    colour = _COLOURS[figures["exit_code"]]
    stopped = (
        f" (interrupted after {runs} of {figures['requested']})" if figures["interrupted"] else ""
    )
    label = escape(f"{figures['scenario']} [{figures['variant']}]")
    console.print(
        f"[bold {colour}]passed {figures['passes']}/{runs} runs[/bold {colour}]{stopped} — "
        f"{label}: exit codes {codes} — exit {figures['exit_code']}",
        highlight=False,
    )
