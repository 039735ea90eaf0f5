"""A recorded run, read back from its journal to be run again: ``harness run --replay``.

The replay runs the scenario as the journal recorded it (with its variant) and the run's
seed, so every simulated user makes the same decisions again (``load/seeding.py``). The
scenario file is not read for it: a file changed since still replays what ran, and the
change is pointed out in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console

from isolation_harness.chaos.cli.runs import run_files
from isolation_harness.chaos.errors import ConfigError
from isolation_harness.chaos.report.journal import A_JOURNAL, JOURNAL_VERSION, read_journal
from isolation_harness.chaos.scenario.loader import load_scenario
from isolation_harness.chaos.scenario.model import Scenario
from isolation_harness.chaos.stack.settings import Settings


@dataclass(frozen=True)
class RecordedRun:
    """What a replay needs of a run: its scenario (variant included), seed and source."""

    journal: Path
    scenario: Scenario
    seed: int
    #: the scenario file the run was started from, if any
    source: Path | None

    def source_note(self) -> str | None:
        """One line if the scenario file the run came from says something else by now."""
        if self.source is None or not self.source.is_file():
            return None
        try:
            current: Scenario | None = load_scenario(self.source).with_variant(
                self.scenario.variant
            )
        except ConfigError:
            current = None
        if current == self.scenario:
            return None
        return (
            f"note: {self.source} changed since the run; replaying the scenario as "
            f"{self.journal} recorded it"
        )


def replay_run(
    path: Path,
    settings: Settings,
    console: Console,
    *,
    reuse: bool,
    reports: Path,
    junit: Path | None,
    journal: Path | None,
) -> int:
    """Run the run recorded in the journal at ``path`` again; its exit code. Its reports go
    to ``REPORTS/<scenario>-<variant>-replay/`` unless ``junit`` or ``journal`` say
    otherwise: the original's are kept."""
    recorded = read_recorded_run(path)
    note = recorded.source_note()
    if note is not None:
        console.print(note, markup=False, highlight=False, soft_wrap=True)
    scenario = recorded.scenario
    folder = reports / f"{scenario.name}-{scenario.variant}-replay"
    return run_files(
        [recorded.source or path], settings, console, variant=None, seed=recorded.seed,
        recorded=scenario, reuse=reuse, reports=reports, junit=junit or folder / "junit.xml",
        journal=journal or folder / "journal.json",
    )  # fmt: skip


def read_recorded_run(path: Path) -> RecordedRun:
    """The run recorded in the journal at ``path``; :class:`ConfigError` naming the file if
    it is not a journal of this harness."""
    data = read_journal(path)
    version = data["journal_version"]
    if version != JOURNAL_VERSION:
        raise ConfigError(
            f"{path}: unknown journal_version {version!r} (this harness reads {JOURNAL_VERSION})",
            "replay it with the harness version that wrote it",
        )
    scenario, seed, variant = data.get("scenario"), data.get("seed"), data.get("variant")
    if not isinstance(scenario, dict) or type(seed) is not int or not isinstance(variant, str):
        raise ConfigError(f"{path} is not a harness journal: it records no scenario, seed "
                          "and variant", A_JOURNAL)  # fmt: skip
    try:
        recorded = Scenario.from_record(scenario).with_variant(variant)
    except (ValidationError, ConfigError) as exc:
        raise ConfigError(
            f"{path}: the scenario it records is not valid here: {_first_error(exc)}",
            "replay it with the harness version that wrote it",
        ) from None
    source = data.get("source")
    return RecordedRun(path, recorded, seed, Path(source) if isinstance(source, str) else None)


def _first_error(exc: ValidationError | ConfigError) -> str:
    if isinstance(exc, ConfigError):
        return exc.problem
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]
