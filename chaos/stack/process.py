"""Processes the harness starts: spawned detached, identified safely, always stoppable.

A process is recorded as ``(pid, start_ticks)``: the start time from ``/proc`` guards
against killing an unrelated process that reused the pid after ours died.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from isolation_harness.chaos.errors import ComponentError


@dataclass(frozen=True)
class ProcessRecord:
    """A process the harness started, as written to the state file."""

    pid: int
    start_ticks: int

    @classmethod
    def of(cls, pid: int) -> ProcessRecord:
        """Record the running process ``pid``."""
        ticks = start_ticks(pid)
        if ticks is None:
            raise ComponentError(f"process {pid} exited right after it was started")
        return cls(pid, ticks)

    def alive(self) -> bool:
        """True while this very process (not a reuse of its pid) is alive."""
        return start_ticks(self.pid) == self.start_ticks and not _is_zombie(self.pid)


def start_ticks(pid: int) -> int | None:
    """The start time of ``pid`` in clock ticks since boot, or None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its end.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def children_of(pid: int) -> list[int]:
    """Pids whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def spawn_detached(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
) -> ProcessRecord:
    """Start ``argv`` in its own session (it outlives the harness command), logging to a file,
    with the harness's environment (and ``env`` over it).

    ``posix_spawn`` rather than ``Popen``: the harness keeps only the pid, so no ``Popen``
    object warns about a child it deliberately leaves running.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    try:
        pid = os.posix_spawnp(
            argv[0],
            list(argv),
            {**os.environ, **(env or {})},
            file_actions=actions,
            setsid=True,
        )
    except OSError as exc:
        raise ComponentError(f"cannot start {argv[0]}: {exc.strerror}") from exc
    ticks = start_ticks(pid)
    if ticks is None:
        raise ComponentError(f"{argv[0]} exited at once; see {log_path}")
    return ProcessRecord(pid, ticks)


def reap(pid: int) -> None:
    """Collect the exit status of ``pid`` if it is our exited child, so it is no zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_gone(record: ProcessRecord, deadline: float) -> bool:
    """Poll until the process is gone or ``deadline`` (monotonic) passes."""
    while time.monotonic() < deadline:
        reap(record.pid)
        if not record.alive():
            reap(record.pid)  # it may have exited since the first look: no zombie left
            return True
        time.sleep(0.02)
    reap(record.pid)
    return not record.alive()


def wait_reaped(pid: int, deadline: float) -> bool:
    """Poll until ``pid`` is gone from the process table, zombie included.

    PostgreSQL refuses to start while the pid in its lock file exists, even as a zombie.
    """
    while time.monotonic() < deadline:
        reap(pid)
        if not Path(f"/proc/{pid}").exists():
            return True
        time.sleep(0.01)
    return not Path(f"/proc/{pid}").exists()


def stop(record: ProcessRecord, *, grace: float = 5.0, sig: int = signal.SIGTERM) -> None:
    """Stop a process: ``sig``, then SIGKILL after ``grace`` seconds. No-op if already gone."""
    if not record.alive():
        return
    try:
        os.kill(record.pid, sig)
    except ProcessLookupError:
        return
    if wait_gone(record, time.monotonic() + grace):
        return
    try:
        # A process that leads its own group (spawned detached) takes its children with it:
        # the app's workers must not outlive their server.
        leads = os.getpgid(record.pid) == record.pid
        (os.killpg if leads else os.kill)(record.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if not wait_gone(record, time.monotonic() + 5.0):
        raise ComponentError(f"process {record.pid} survived SIGKILL")
