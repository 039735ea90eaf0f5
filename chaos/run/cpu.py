"""CPU use read from ``/proc``: the machine's idle share, and what a process tree burns.

    before = read_cpu({"app": app_pid, "postgres": postmaster_pid, "run": [app_pid, ...]})
    ...                                    # a second later
    use = cpu_use(before, read_cpu(...))   # {"seconds", "cpus", "idle", "app", "postgres", "run"}

A process tree is a process and all its descendants (the app's server and its workers, the
postmaster and its backends); several roots make one tree of all their descendants, each
process counted once (``run``: every process of a run). Its CPU time counts the times of
its children already reaped (``cutime``, ``cstime``), so a backend that ends between two
readings does not take its seconds with it. Linux only: elsewhere, or when ``/proc``
cannot be read, there is no reading, and the runner records no figures.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
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
    """A process tree's CPU time at one reading, and which roots it was measured from."""

    #: each root's pid and start time: a root restarted or replaced makes another tree
    roots: tuple[tuple[int, int], ...]
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


#: what a tree is read from: one root pid, several, or None (nothing to read)
Roots = int | Sequence[int] | None


def tree_times(table: Mapping[int, ProcessTimes], root: int | Sequence[int]) -> TreeTimes | None:
    """The CPU time of ``root`` (one pid or several) and their descendants in ``table``,
    each process once; None when a root is not running (or none is given)."""
    roots = sorted({root} if isinstance(root, int) else set(root))
    if not roots or any(pid not in table for pid in roots):
        return None
    children: dict[int, list[int]] = {}
    for process in table.values():
        children.setdefault(process.ppid, []).append(process.pid)
    ticks, todo, seen = 0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        ticks += table[pid].ticks
        todo += children.get(pid, [])
    return TreeTimes(tuple((pid, table[pid].start_ticks) for pid in roots), ticks)


def read_cpu(roots: Mapping[str, Roots], proc: Path = PROC) -> CpuReading | None:
    """The machine's times and each named tree's (``roots``: name -> its root pid, pids,
    or None); None if ``/proc`` cannot be read."""
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
    running at both readings, or a root changed in between (a restarted postmaster, a
    process of the run started or gone).
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
        if then is None or now is None or then.roots != now.roots or seconds <= 0:
            use[name] = None
            continue
        use[name] = round(max(0, now.ticks - then.ticks) / ticks_per_second / seconds, 3)
    return use
