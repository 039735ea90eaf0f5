"""`harness run`, `harness suite` and `harness validate`: files in, reports and an exit code out."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from chaos.errors import (
    EXIT_HARNESS_ERROR,
    EXIT_INVALID,
    EXIT_INVARIANT,
    EXIT_PASS,
    EXIT_THRESHOLD,
    ConfigError,
)
from chaos.journal import write_journal
from chaos.junit import write_junit
from chaos.runner import run_scenario
from chaos.scenario import Scenario
from chaos.scenario_loader import load_scenario, validate_files
from chaos.settings import Settings
from chaos.summary import print_summary

#: when a suite has several results, the most serious one is its exit code
SEVERITY = [EXIT_HARNESS_ERROR, EXIT_INVARIANT, EXIT_INVALID, EXIT_THRESHOLD, EXIT_PASS]


def worst(codes: Sequence[int]) -> int:
    return min(codes, key=SEVERITY.index) if codes else EXIT_PASS


def scenario_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder", "pass the folder holding the .yaml files")
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
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
) -> int:
    """Validate every file first (nothing runs if one is bad), then run them in order."""
    scenarios: list[tuple[Path, Scenario]] = []
    for path in paths:
        scenario = recorded if recorded is not None else load_scenario(path)
        scenarios.append((path, scenario.with_variant(variant) if variant else scenario))
    journals: list[dict[str, Any]] = []
    for path, scenario in scenarios:
        console.print(
            f"[bold]{scenario.name}[/bold] [{scenario.variant}] — {scenario.description.strip()}"
        )
        record = asyncio.run(
            run_scenario(
                scenario, settings, source=path, seed=seed, reuse=reuse,
                report=lambda line: console.print(f"  [dim]{line}[/dim]"),
            )
        )  # fmt: skip
        target = journal if journal is not None and len(scenarios) == 1 else (
            reports / f"{scenario.name}-{scenario.variant}" / "journal.json"
        )  # fmt: skip
        data = write_journal(record, target)
        journals.append(data)
        print_summary(data, console)
        console.print(f"journal: {target}")
        if record.interrupted:
            break
    junit_path = junit or (
        reports / "junit.xml"
        if len(scenarios) > 1
        else reports / f"{scenarios[0][1].name}-{scenarios[0][1].variant}" / "junit.xml"
    )
    write_junit(journals, junit_path)
    console.print(f"junit: {junit_path}")
    return worst([int(j["exit_code"]) for j in journals])
