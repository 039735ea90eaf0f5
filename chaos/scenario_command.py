"""`harness run`, `harness suite` and `harness validate`: files in, reports and an exit code out."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from chaos.errors import EXIT_PASS, ConfigError, worst
from chaos.journal import write_journal
from chaos.junit import write_junit
from chaos.repetition import repetition, write_repetitions
from chaos.runner import run_scenario
from chaos.scenario import Scenario
from chaos.scenario_loader import load_scenario, validate_files
from chaos.settings import Settings
from chaos.summary import print_repetition, print_run_line, print_summary, wall_line


def scenario_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder", "pass the folder holding the .yaml files")
    files = sorted([*folder.rglob("*.yaml"), *folder.rglob("*.yml")])
    if not files:
        raise ConfigError(f"no scenario files (*.yaml) in {folder}", "pass another folder")
    return files


def validate(paths: Sequence[Path], console: Console) -> int:
    problems = validate_files(list(paths))
    for problem in problems:
        console.print(str(problem), markup=False, soft_wrap=True)
    if problems:
        bad = len({p.file for p in problems})
        raise ConfigError(f"{len(problems)} problem(s) in {bad} of {len(paths)} file(s)",
                          "fix the lines listed above")  # fmt: skip
    console.print(f"{len(paths)} scenario file(s) valid")
    return EXIT_PASS


def run_files(
    paths: Sequence[Path],
    settings: Settings,
    console: Console,
    *,
    variant: str | None,
    seed: int | None,
    recorded: Scenario | None = None,  # run instead of the file's (a replay: as recorded)
    reuse: bool,
    reports: Path,
    junit: Path | None,
    journal: Path | None = None,
    repeat: int = 1,
) -> int:
    """Validate every file first (nothing runs if one is bad), then run them in order, each
    ``repeat`` times in a row; the exit code is the worst of all runs."""
    started = time.monotonic()
    scenarios: list[tuple[Path, Scenario]] = []
    for path in paths:
        scenario = recorded if recorded is not None else load_scenario(path)
        scenarios.append((path, scenario.with_variant(variant) if variant else scenario))
    # the runs of each scenario, and where their journals went
    journals: list[list[dict[str, Any]]] = []
    targets: list[list[Path]] = []
    repetitions: list[dict[str, Any]] = []
    for (path, scenario), run in itertools.product(scenarios, range(1, repeat + 1)):
        if run == 1:
            label = escape(f"[{scenario.variant}]")  # not a style: printed as written
            console.print(f"[bold]{scenario.name}[/bold] {label} — {scenario.description.strip()}")
            journals.append([])
            targets.append([])
        record = asyncio.run(
            run_scenario(
                scenario, settings, source=path, seed=seed, reuse=reuse,
                report=lambda line: console.print(f"  [dim]{line}[/dim]"),
            )
        )  # fmt: skip
        target = journal if journal is not None and len(scenarios) == 1 else (
            reports / f"{scenario.name}-{scenario.variant}" / "journal.json"
        )  # fmt: skip
        if repeat > 1:
            target = target.parent / f"run-{run}" / target.name
        data = write_journal(record, target)
        journals[-1].append(data)
        targets[-1].append(target)
        if repeat == 1:
            print_summary(data, console)
        else:
            print_run_line(data, run, repeat, console)
        console.print(f"journal: {target}", soft_wrap=True, markup=False)
        if repeat > 1 and (run == repeat or record.interrupted):
            repetitions.append(repetition(journals[-1], requested=repeat, paths=targets[-1]))
            print_repetition(repetitions[-1], console)
        if record.interrupted:
            break
    folder = (
        reports
        if len(scenarios) > 1
        else reports / f"{scenarios[0][1].name}-{scenarios[0][1].variant}"
    )
    junit_path = junit or folder / "junit.xml"
    write_junit(journals, junit_path, wall_seconds=time.monotonic() - started)
    console.print(f"junit: {junit_path}", soft_wrap=True, markup=False)
    if repetitions:
        write_repetitions(repetitions, folder / "repeat.json")
        console.print(f"repeat: {folder / 'repeat.json'}", soft_wrap=True, markup=False)
    ran = [data for runs in journals for data in runs]
    console.print(wall_line(time.monotonic() - started, ran), highlight=False)
    return worst([int(data["exit_code"]) for runs in journals for data in runs])
