"""`harness report` and `harness compare`: the HTML pages of runs already made, from their
journals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from isolation_harness.chaos.errors import ConfigError
from isolation_harness.chaos.report.html import Entry, compare_page, write_index, write_run_report
from isolation_harness.chaos.report.journal import A_JOURNAL, read_journal

JOURNAL_NAME = "journal.json"


def journal_paths(paths: Sequence[Path]) -> list[Path]:
    """The journals named, a folder standing for every ``journal.json`` under it."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            inside = sorted(path.rglob(JOURNAL_NAME))
            if not inside:
                raise ConfigError(f"no {JOURNAL_NAME} under {path}", A_JOURNAL)
            found += inside
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def report(paths: Sequence[Path], console: Console, *, index: Path | None) -> int:
    """``report.html`` beside every journal; with ``index`` (a folder) their suite index
    there too, the runs of one scenario and variant in one row. Every journal is read
    first: nothing is written if one is not a journal."""
    journals = [(path, read_journal(path)) for path in journal_paths(paths)]
    for path, data in journals:
        console.print(f"report: {write_run_report(path, data)}", soft_wrap=True, markup=False)
    if index is not None:
        rows: dict[tuple[str, str], Entry] = {}
        for path, data in journals:
            key = (data["scenario"]["name"], data["variant"])
            entry = rows.setdefault(key, Entry([], []))
            entry.journals.append(data)
            entry.paths.append(path)
        page = write_index(list(rows.values()), index)
        console.print(f"index: {page}", soft_wrap=True, markup=False)
    return 0


def compare(
    a: Path, b: Path, out: Path, console: Console, *, labels: tuple[str | None, str | None]
) -> int:
    """``out``: runs ``a`` and ``b`` side by side."""
    first, second = read_journal(a), read_journal(b)
    names = (labels[0] or label_of(first), labels[1] or label_of(second))
    if names[0] == names[1]:
        names = (f"{names[0]} (A)", f"{names[1]} (B)")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(compare_page(first, second, names))
    console.print(f"compare: {out}", soft_wrap=True, markup=False)
    return 0


def label_of(journal: dict[str, Any]) -> str:
    """``name [variant] 14:02:11``: what tells two runs apart by default."""
    started = datetime.fromtimestamp(journal["started_at"], UTC).strftime("%H:%M:%S")
    return f"{journal['scenario']['name']} [{journal['variant']}] {started}"
