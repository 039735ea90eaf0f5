"""The console summary of a run, rendered from its journal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _num(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def print_summary(data: dict[str, Any], console: Console) -> None:
    verdicts = data["verdicts"]
    table = Table(title=f"{data['scenario']['name']} [{data['variant']}]", title_justify="left")
    for column in ("check", "where", "measured", "expected", "result"):
        table.add_column(column)
    for t in verdicts["thresholds"]:
        table.add_row(
            t["expression"], f"{t['group']} / {t['phase']} ({t['samples']} req)",
            _num(t["measured"]), _num(t["expected"]),
            "[green]ok[/green]" if t["passed"] else "[red]BREACHED[/red]",
        )  # fmt: skip
    for i in verdicts["invariants"]:
        detail = "" if i["passed"] else "; ".join(i["violations"][:2])
        counted = ", ".join(f"{k} {n}" for k, n in i.get("counts", {}).items() if n)
        table.add_row(
            f"invariant {i['name']}", counted or f"{i['checked']} checked", detail, "",
            "[green]ok[/green]" if i["passed"] else "[red]VIOLATED[/red]",
        )  # fmt: skip
    for v in verdicts["validity"]:
        if not v["passed"]:
            table.add_row(v["name"], "", v["detail"], "", "[yellow]INVALID[/yellow]")
    console.print(table)
    for error in verdicts["harness_errors"]:
        console.print(f"[red]harness error[/red]: {error}")
    colour = {0: "green", 1: "red", 2: "red", 3: "yellow", 4: "red"}[data["exit_code"]]
    expected = " (failure expected)" if data["expect"] == "fail" else ""
    console.print(
        f"[bold {colour}]{data['result']}[/bold {colour}]{expected} — exit {data['exit_code']}, "
        f"seed {data['seed']}, {data['load']['samples']} requests"
    )
