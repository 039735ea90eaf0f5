"""`harness run`, `harness suite` and `harness validate`: files in, reports and an exit code out."""

from __future__ import annotations

import asyncio
import heapq
import io
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from isolation_harness.chaos.errors import EXIT_PASS, ConfigError, worst
from isolation_harness.chaos.interruption import Interruption
from isolation_harness.chaos.report.html import Entry, write_index, write_run_report
from isolation_harness.chaos.report.journal import write_journal
from isolation_harness.chaos.report.junit import write_junit
from isolation_harness.chaos.report.repetition import repetition, write_repetitions
from isolation_harness.chaos.report.summary import (
    print_repetition,
    print_run_line,
    print_summary,
    wall_line,
)
from isolation_harness.chaos.run.runner import run_scenario
from isolation_harness.chaos.scenario.loader import load_scenario, validate_files
from isolation_harness.chaos.scenario.model import Scenario
from isolation_harness.chaos.stack.settings import Settings


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


@dataclass
class _Scenario:
    """One scenario of a suite: its runs' journals, where they went, and their figures."""

    path: Path
    scenario: Scenario
    journals: list[dict[str, Any]] = field(default_factory=list)
    targets: list[Path] = field(default_factory=list)
    repetition: dict[str, Any] | None = None

    def expected_seconds(self, repeat: int) -> float:
        """About how long its runs take: the legacy design's app is not ready again after
        its faults, so those runs wait out the recovery deadline too."""
        waits = self.scenario.ready_within if self.scenario.variant == "legacy" else 0.0
        return repeat * (self.scenario.total_duration + waits)


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
    jobs: int = 1,
) -> int:
    """Validate every file first (nothing runs if one is bad), then run each ``repeat`` times
    in a row, up to ``jobs`` scenarios at once (:class:`_Suite`); the exit code is the worst
    of all runs. Ends with the wall time."""
    started = time.monotonic()
    scenarios: list[_Scenario] = []
    for path in paths:
        scenario = recorded if recorded is not None else load_scenario(path)
        scenarios.append(_Scenario(path, scenario.with_variant(variant) if variant else scenario))
    suite = _Suite(
        settings, console, seed=seed, reuse=reuse, repeat=repeat, jobs=jobs,
        journal=lambda s: journal if journal is not None and len(scenarios) == 1 else (
            reports / f"{s.name}-{s.variant}" / "journal.json"
        ),
    )  # fmt: skip
    suite.run(scenarios)
    ran = [item for item in scenarios if item.journals]
    first = scenarios[0].scenario
    folder = reports if len(scenarios) > 1 else reports / f"{first.name}-{first.variant}"
    wall = time.monotonic() - started
    junit_path = junit or folder / "junit.xml"
    write_junit([item.journals for item in ran], junit_path, wall_seconds=wall)
    console.print(f"junit: {junit_path}", soft_wrap=True, markup=False)
    repetitions = [item.repetition for item in ran if item.repetition is not None]
    if repetitions:
        write_repetitions(repetitions, folder / "repeat.json")
        console.print(f"repeat: {folder / 'repeat.json'}", soft_wrap=True, markup=False)
    write_pages(ran, folder, console, index=len(scenarios) > 1 or repeat > 1)
    journals = [data for item in ran for data in item.journals]
    console.print(wall_line(wall, journals, jobs), highlight=False)
    return worst([int(data["exit_code"]) for data in journals])


def write_pages(ran: Sequence[_Scenario], folder: Path, console: Console, *, index: bool) -> None:
    """``report.html`` beside every journal, and with ``index`` the suite's ``index.html``
    in ``folder``: drawn once every run is over, so that no drawing shares the machine
    with a run's judged phases."""
    for item in ran:
        for data, target in zip(item.journals, item.targets, strict=True):
            page = write_run_report(target, data)
            if not index:
                console.print(f"report: {page}", soft_wrap=True, markup=False)
    if index and ran:
        page = write_index([Entry(item.journals, item.targets) for item in ran], folder)
        console.print(f"report: {page}", soft_wrap=True, markup=False)


class _Suite:
    """Runs scenarios, each ``repeat`` times in a row, up to ``jobs`` at once.

    Each scenario runs in a worker thread of its own, and each run with its own event loop
    (``asyncio.run``, as a single run) on its own throw-away stack. Not one event loop for
    all: judging a run and writing its reports is synchronous work of a second or more,
    which would hold up the other runs' timelines and their sampling once a second, while
    threads take turns every few milliseconds. Ctrl-C (or SIGTERM) stops every run going on,
    each reverting its faults, and starts no other.

    With one job the runs go one after the other, in the files' order, printing as they go.
    With N jobs, N runs at once start their stack and go through their timeline: that is
    what loads the machine and what is judged. A run whose timeline has ended only winds
    down (its users finish their requests, it waits for the app to be ready again, checks
    the invariants and stops its stack: 1 to 17 s, mostly waiting), so the next run starts
    meanwhile (:class:`_Slots`). The longest scenarios start first, so that the last to end
    does not run alone; each run's lines are printed together when it ends, under its
    scenario's name.
    """

    def __init__(
        self,
        settings: Settings,
        console: Console,
        *,
        seed: int | None,
        reuse: bool,
        repeat: int,
        jobs: int,
        journal: Callable[[Scenario], Path],
    ) -> None:
        self.settings = settings
        self.console = console
        self.seed = seed
        self.reuse = reuse
        self.repeat = repeat
        self.jobs = jobs
        self.journal = journal
        self.interruption = Interruption()
        self._slots = _Slots(jobs)
        self._printing = threading.Lock()

    def run(self, scenarios: Sequence[_Scenario]) -> None:
        """Run every scenario; their journals and figures are kept in them."""
        order = (
            list(scenarios)
            if self.jobs == 1
            else sorted(
                scenarios,
                key=lambda item: (not item.scenario.alone, -item.expected_seconds(self.repeat)),
            )
        )
        # Every run in a slot, and as many winding down (one thread: one run at a time).
        threads = 1 if self.jobs == 1 else 2 * self.jobs
        self._slots.expect([(rank, 1) for rank in range(len(order))])
        with (
            self.interruption.on_signals(),
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="scenario") as pool,
        ):
            running = [pool.submit(self._runs, rank, item) for rank, item in enumerate(order)]
            try:
                for future in running:
                    future.result()
            except BaseException:
                self.interruption.interrupt()  # a crash of the harness stops the others too
                raise

    def _runs(self, rank: int, item: _Scenario) -> None:
        """The runs of one scenario, in a row (in a worker thread); each waits for a slot,
        and ``rank`` is the scenario's turn for one."""
        # A scenario that needs the machine to itself takes every place, once no other run
        # is going on, even winding down: its judged phases share the machine with nothing.
        alone = item.scenario.alone
        for run in range(1, self.repeat + 1):
            if not self._slots.take((rank, run), self.interruption, alone=alone):
                break  # interrupted meanwhile
            release = _Once(lambda: self._slots.give_back(alone=alone))
            out = self.console if self.jobs == 1 else _buffer(self.console)
            try:
                self._run(item, run, out, release)
            finally:
                release()
                self._slots.done()
            self._emit(out)
        if self.repeat > 1 and item.journals and item.repetition is None:  # stopped between runs
            out = self.console if self.jobs == 1 else _buffer(self.console)
            item.repetition = repetition(item.journals, requested=self.repeat, paths=item.targets)
            print_repetition(item.repetition, out)
            self._emit(out)

    def _emit(self, out: Console) -> None:
        """Print what ``out`` kept, all together (nothing to do for the console itself)."""
        if out is not self.console:
            with self._printing:
                self.console.print(Text.from_ansi(_text(out)), end="", soft_wrap=True)

    def _run(self, item: _Scenario, run: int, out: Console, release: Callable[[], None]) -> None:
        scenario, repeat = item.scenario, self.repeat
        label = escape(f"[{scenario.variant}]")  # not a style: printed as written
        of_runs = f"run {run}/{repeat}" if repeat > 1 else ""
        if run == 1:
            out.print(f"[bold]{scenario.name}[/bold] {label} — {scenario.description.strip()}")
        elif self.jobs > 1:
            out.print(f"[bold]{scenario.name}[/bold] {label} — {of_runs}")
        if self.jobs > 1:
            with self._printing:
                self.console.print(f"started: {scenario.name} {label} {of_runs}".rstrip())
        record = asyncio.run(
            run_scenario(
                scenario, self.settings, source=item.path, seed=self.seed, reuse=self.reuse,
                report=lambda line: out.print(f"  [dim]{line}[/dim]"),
                interruption=self.interruption, on_timeline_end=release,
            )
        )  # fmt: skip
        target = self.journal(scenario)
        if repeat > 1:
            target = target.parent / f"run-{run}" / target.name
        data = write_journal(record, target)
        item.journals.append(data)
        item.targets.append(target)
        if repeat == 1:
            print_summary(data, out)
        else:
            print_run_line(data, run, repeat, out)
        out.print(f"journal: {target}", soft_wrap=True, markup=False)
        if record.interrupted:
            self.interruption.interrupt()  # Ctrl-C stops the whole suite
        if repeat > 1 and (run == repeat or self.interruption.interrupted):
            item.repetition = repetition(item.journals, requested=repeat, paths=item.targets)
            print_repetition(item.repetition, out)


class _Slots:
    """The N places for runs that start their stack and go through their timeline; given
    in turn: the smallest rank waiting (the scenario's place in the order, then its run).

    The first run of every scenario is expected from the start (:meth:`expect`): its thread
    may begin later than the next one's, and a place must still go to it first. A run
    ``alone`` takes every place, once no other run is going on, not even winding down
    (:meth:`done` says a run is over); the runs after it wait meanwhile.
    """

    def __init__(self, places: int) -> None:
        self._places = places
        self._free = places
        #: runs that took places and are not over yet (winding down included)
        self._busy = 0
        self._waiting: list[tuple[int, int]] = []
        self._changed = threading.Condition()

    def expect(self, ranks: Sequence[tuple[int, int]]) -> None:
        """Count ``ranks`` as waiting already, before their threads ask."""
        with self._changed:
            for rank in ranks:
                heapq.heappush(self._waiting, rank)

    def take(
        self, rank: tuple[int, int], interruption: Interruption, *, alone: bool = False
    ) -> bool:
        """Wait for a place (``alone``: every place, and every other run to be over) and
        take it; False (and none taken) once interrupted."""
        places = self._places if alone else 1
        with self._changed:
            if rank not in self._waiting:
                heapq.heappush(self._waiting, rank)
            try:
                while not interruption.interrupted:
                    if (
                        self._waiting[0] == rank
                        and self._free >= places
                        and (not alone or self._busy == 0)
                    ):
                        self._free -= places
                        self._busy += 1
                        return True
                    self._changed.wait(timeout=0.1)
                return False
            finally:
                self._waiting.remove(rank)
                heapq.heapify(self._waiting)
                self._changed.notify_all()  # the next rank may be first now

    def give_back(self, *, alone: bool = False) -> None:
        """Give back what a run took, when its timeline ends."""
        with self._changed:
            self._free += self._places if alone else 1
            self._changed.notify_all()

    def done(self) -> None:
        """A run that took places is over (after :meth:`give_back`)."""
        with self._changed:
            self._busy -= 1
            self._changed.notify_all()


class _Once:
    """Calls ``action`` the first time it is called, never again."""

    def __init__(self, action: Callable[[], None]) -> None:
        self._action: Callable[[], None] | None = action
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            action, self._action = self._action, None
        if action is not None:
            action()


def _buffer(console: Console) -> Console:
    """A console as wide as ``console`` that keeps what is printed, styles included."""
    return Console(
        file=io.StringIO(), width=console.width, force_terminal=True, color_system="truecolor",
        highlight=False,
    )  # fmt: skip


def _text(buffer: Console) -> str:
    file = buffer.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()
