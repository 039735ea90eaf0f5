"""CPU use read from ``/proc``: the machine's idle share, and what a process tree burns.

    before = read_cpu({"app": app_pid, "postgres": postmaster_pid})
    ...                                    # a second later
    use = cpu_use(before, read_cpu(...))   # {"seconds", "cpus", "idle", "app", "postgres"}

A process tree is a process and all its descendants (the app's server and its workers, the
postmaster and its backends). Its CPU time counts the times of its children already reaped
(``cutime``, ``cstime``), so a backend that ends between two readings does not take its
seconds with it. Linux only: elsewhere, or when ``/proc`` cannot be read, there is no
reading, and the runner records no figures.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class MachineTimes:
    """The machine's CPU time so far (``/proc/stat``), in clock ticks over all CPUs."""

    total: int
    #: idle and waiting for I/O: time a runnable task could have had
    idle: int
    cpus: int


@dataclass(frozen=True)
class ProcessTimes:
    """One process's line of ``/proc/<pid>/stat``, as far as a tree needs it."""

    pid: int
    ppid: int
    #: CPU time of the process and of its children already reaped, in clock ticks
    ticks: int
    #: when it started, in clock ticks since boot: a pid reused by another process differs
    start_ticks: int


@dataclass(frozen=True)
class TreeTimes:
    """A process tree's CPU time at one reading, and which root it was measured from."""

    root: int
    root_start: int
    ticks: int


@dataclass(frozen=True)
class CpuReading:
    """Everything read at one instant (``at``: a monotonic clock, seconds)."""

    at: float
    machine: MachineTimes
    #: name -> the tree's times; None when its root was not running
    trees: Mapping[str, TreeTimes | None]


def parse_machine(text: str) -> MachineTimes:
    """``/proc/stat``: the aggregate ``cpu`` line, and how many ``cpuN`` lines follow."""
    total = idle = cpus = 0
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if name == "cpu":
            # user nice system idle iowait irq softirq steal (guest time is in user already)
            ticks = [int(v) for v in rest.split()[:8]]
            total, idle = sum(ticks), ticks[3] + ticks[4]
        elif name.startswith("cpu") and name[3:].isdigit():
            cpus += 1
    if cpus == 0:
        raise ValueError("no cpu lines in /proc/stat")
    return MachineTimes(total, idle, cpus)


def parse_process(pid: int, text: str) -> ProcessTimes:
    """``/proc/<pid>/stat``. The command name (field 2) may hold spaces and parentheses:
    the fields are counted from its closing parenthesis."""
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): ppid is field 4, utime..cstime 14-17, starttime 22
    ppid = int(fields[1])
    ticks = sum(int(v) for v in fields[11:15])
    return ProcessTimes(pid, ppid, ticks, int(fields[19]))


def tree_times(table: Mapping[int, ProcessTimes], root: int) -> TreeTimes | None:
    """The CPU time of ``root`` and its descendants in ``table`` (None: no such process)."""
    if root not in table:
        return None
    children: dict[int, list[int]] = {}
    for process in table.values():
        children.setdefault(process.ppid, []).append(process.pid)
    ticks, todo, seen = 0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        ticks += table[pid].ticks
        todo += children.get(pid, [])
    return TreeTimes(root, table[root].start_ticks, ticks)


def read_cpu(roots: Mapping[str, int | None], proc: Path = PROC) -> CpuReading | None:
    """The machine's times and each named tree's (``roots``: name -> root pid or None);
    None if ``/proc`` cannot be read."""
    at = time.monotonic()
    try:
        machine = parse_machine((proc / "stat").read_text())
    except (OSError, ValueError, IndexError):
        return None
    table = {p.pid: p for p in _processes(proc)}
    trees = {name: None if pid is None else tree_times(table, pid) for name, pid in roots.items()}
    return CpuReading(at, machine, trees)


def _processes(proc: Path) -> Iterator[ProcessTimes]:
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            yield parse_process(int(entry.name), (entry / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read


def cpu_use(
    before: CpuReading, after: CpuReading, clock_ticks: int | None = None
) -> dict[str, float | int | None]:
    """What was used between two readings: ``seconds`` (wall), ``cpus`` (the machine's),
    ``idle`` (the share of the machine's CPU time left idle, 0 to 1) and, per tree, the
    CPU seconds it used per wall second (1.0: one CPU busy). A tree is None when it was not
    running at both readings, or its root changed in between (a restarted postmaster).
    """
    ticks_per_second = clock_ticks or os.sysconf("SC_CLK_TCK")
    seconds = after.at - before.at
    total = after.machine.total - before.machine.total
    use: dict[str, float | int | None] = {
        "seconds": round(seconds, 3),
        "cpus": after.machine.cpus,
        "idle": None
        if total <= 0
        else round(min(1.0, max(0.0, (after.machine.idle - before.machine.idle) / total)), 3),
    }
    for name, then in before.trees.items():
        now = after.trees.get(name)
        same = (
            then is not None
            and now is not None
            and (then.root, then.root_start) == (now.root, now.root_start)
        )
        if not same or seconds <= 0 or now is None or then is None:
            use[name] = None
            continue
        use[name] = round(max(0, now.ticks - then.ticks) / ticks_per_second / seconds, 3)
    return use
