"""CPU use from /proc: the files' text parsed, process trees summed, two readings compared."""

from __future__ import annotations

from pathlib import Path

import pytest

from isolation_harness.chaos.run.cpu import (
    CpuReading,
    MachineTimes,
    TreeTimes,
    cpu_use,
    parse_machine,
    parse_process,
    read_cpu,
    tree_times,
)

PROC_STAT = """\
cpu  686636 0 232594 1101388 3147 0 27971 331 0 0
cpu0 319183 0 112240 579560 509 0 13935 160 0 0
cpu1 367453 0 120353 521827 2638 0 14035 170 0 0
intr 26787176 0 0 0
ctxt 82278095
btime 1700000000
processes 26607
"""

#: a worker whose command name holds a space and parentheses, as a thread name may
WORKER_STAT = (
    "4242 (python (worker) 1) S 4200 4200 19921 0 -1 4194304 99 0 0 0 "
    "150 30 7 3 20 0 1 0 1037848 3133440 362 18446744073709551615 0 0 0 0 0"
)


def stat_line(pid: int, ppid: int, ticks: int, start: int = 100, name: str = "proc") -> str:
    """A /proc/<pid>/stat line with ``ticks`` as utime (stime and the children's at 0)."""
    return f"{pid} ({name}) S {ppid} 1 1 0 -1 0 0 0 0 0 {ticks} 0 0 0 20 0 1 0 {start} 0 0"


def test_the_machine_line_counts_idle_and_io_wait_as_idle() -> None:
    machine = parse_machine(PROC_STAT)
    assert machine.cpus == 2
    assert machine.total == 686636 + 232594 + 1101388 + 3147 + 27971 + 331
    assert machine.idle == 1101388 + 3147


def test_a_stat_file_without_cpu_lines_is_refused() -> None:
    with pytest.raises(ValueError, match="no cpu lines"):
        parse_machine("intr 1 2 3\n")


def test_a_process_line_is_read_after_the_command_name() -> None:
    process = parse_process(4242, WORKER_STAT)
    assert (process.pid, process.ppid) == (4242, 4200)
    assert process.ticks == 150 + 30 + 7 + 3  # utime, stime, and the reaped children's
    assert process.start_ticks == 1037848


def tree(root: int, start: int, ticks: int) -> TreeTimes:
    return TreeTimes(((root, start),), ticks)


def test_a_tree_sums_a_root_and_all_its_descendants() -> None:
    table = {
        p.pid: p
        for p in (
            parse_process(10, stat_line(10, 1, 5)),  # the app's server
            parse_process(11, stat_line(11, 10, 100)),  # a worker
            parse_process(12, stat_line(12, 10, 120)),  # another
            parse_process(13, stat_line(13, 12, 7)),  # a worker's own child
            parse_process(20, stat_line(20, 1, 999)),  # someone else
        )
    }
    assert tree_times(table, 10) == tree(10, 100, 5 + 100 + 120 + 7)
    assert tree_times(table, 12) == tree(12, 100, 127)
    assert tree_times(table, 99) is None


def test_a_tree_of_several_roots_counts_each_process_once_and_needs_every_root() -> None:
    table = {
        p.pid: p
        for p in (
            parse_process(10, stat_line(10, 1, 5)),  # the app's server
            parse_process(11, stat_line(11, 10, 100)),  # its worker
            parse_process(20, stat_line(20, 1, 50)),  # the postmaster
            parse_process(30, stat_line(30, 1, 40)),  # a Locust process
            parse_process(40, stat_line(40, 1, 999)),  # someone else
        )
    }
    found = tree_times(table, [30, 10, 20, 11])  # 11 is 10's already: counted once
    assert found == TreeTimes(((10, 100), (11, 100), (20, 100), (30, 100)), 5 + 100 + 50 + 40)
    assert tree_times(table, [10, 20, 31]) is None  # a process of the run is gone
    assert tree_times(table, []) is None


def reading(at: float, total: int, idle: int, **trees: TreeTimes | None) -> CpuReading:
    return CpuReading(at, MachineTimes(total, idle, 2), trees)


def test_two_readings_give_the_idle_share_and_the_cpus_each_tree_used() -> None:
    before = reading(10.0, 1000, 400, app=tree(10, 5, 300), postgres=tree(20, 6, 50))
    after = reading(11.0, 1200, 410, app=tree(10, 5, 490), postgres=tree(20, 6, 60))
    use = cpu_use(before, after, clock_ticks=100)
    assert use == {"seconds": 1.0, "cpus": 2, "idle": 0.05, "app": 1.9, "postgres": 0.1}


def test_a_tree_whose_root_changed_or_vanished_has_no_figure() -> None:
    before = reading(10.0, 1000, 400, app=tree(10, 5, 300), postgres=tree(20, 6, 50))
    restarted = tree(21, 9, 3)  # a new postmaster: its times start again
    after = reading(11.0, 1200, 600, app=None, postgres=restarted)
    use = cpu_use(before, after, clock_ticks=100)
    assert (use["app"], use["postgres"], use["idle"]) == (None, None, 1.0)


def test_a_tree_of_several_roots_whose_members_changed_has_no_figure() -> None:
    run = TreeTimes(((10, 5), (20, 6)), 350)
    more = TreeTimes(((10, 5), (20, 6), (30, 7)), 360)  # a process joined the run
    use = cpu_use(reading(10.0, 1000, 400, run=run), reading(11.0, 1200, 410, run=more), 100)
    assert use["run"] is None
    same = TreeTimes(((10, 5), (20, 6)), 500)
    use = cpu_use(reading(10.0, 1000, 400, run=run), reading(11.0, 1200, 410, run=same), 100)
    assert use["run"] == 1.5


def test_a_proc_folder_is_read_whole(tmp_path: Path) -> None:
    (tmp_path / "stat").write_text(PROC_STAT)
    for pid, ppid, ticks in [(10, 1, 5), (11, 10, 100), (20, 1, 50), (21, 20, 3)]:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(stat_line(pid, ppid, ticks))
    (tmp_path / "30").mkdir()  # a process that ended while the folder was read
    (tmp_path / "self").mkdir()  # not a process
    found = read_cpu({"app": 10, "postgres": 20, "gone": 30, "none": None}, proc=tmp_path)
    assert found is not None
    assert found.machine == parse_machine(PROC_STAT)
    assert found.trees == {
        "app": tree(10, 100, 105),
        "postgres": tree(20, 100, 53),
        "gone": None,
        "none": None,
    }
    (tmp_path / "stat").unlink()
    assert read_cpu({"app": 10}, proc=tmp_path) is None  # no machine figures: no reading
