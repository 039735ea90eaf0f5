"""The warden: stops what a run started when the run's own process dies before it could.

A run stops its stack and its load itself, also on Ctrl-C. Its process can die without that
chance: SIGKILL, a CI job's time limit, xdist killing a worker ten seconds after Ctrl-C while
its run is still stopping, execnet's ``os._exit``. PostgreSQL, Toxiproxy, the app, the fakes
and Locust run in sessions of their own and would go on running, their folders left behind.

The warden is a small process in a session of its own (a terminal's Ctrl-C does not reach
it), started before anything else of the run. It reads orders from a pipe whose write end
only the run's process holds, so the kernel closes it when that process ends, however it
ends. Released, it exits. At the end of the pipe without a release, it stops every process
and every stack it was told of, then removes the folders, as ``harness down`` would.
Testcontainers' Ryuk does the same for containers.

Run as ``python -m isolation_harness.chaos.stack.warden LOG``. It writes ``LOG`` only when
it has to act, and removes it again when it stopped everything: what it could not stop is
named there.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from isolation_harness.chaos.errors import ComponentError, StackBusy
from isolation_harness.chaos.stack.process import ProcessRecord, start_ticks, stop

if TYPE_CHECKING:
    from isolation_harness.chaos.stack.lifecycle import Stack

#: seconds the warden gets to exit once released (it only reads the release and exits)
RELEASE_WAIT = 10.0
#: seconds the warden waits for another command stopping the same stack to end
BUSY_WAIT = 60.0


class Warden:
    """The run's side: tell the warden what to look after, release it once all is stopped."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self._process = process
        self.log_path = log_path
        self.released = False

    @classmethod
    def start(cls, log_path: Path) -> Warden:
        """Start a warden; should it have to act, it says what it did in ``log_path``."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "isolation_harness.chaos.stack.warden", str(log_path)],
                # the pipe's write end is not inheritable: no other child keeps it open
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            raise ComponentError(f"cannot start the warden: {exc.strerror}") from exc
        return cls(process, log_path)

    def __enter__(self) -> Warden:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()

    def watch_process(self, record: ProcessRecord) -> None:
        """Stop ``record`` (SIGTERM, then SIGKILL to its group) if the run dies."""
        self._send({"process": [record.pid, record.start_ticks]})

    def watch_pid(self, pid: int) -> None:
        """:meth:`watch_process` of the process ``pid``, if it still runs."""
        ticks = start_ticks(pid)
        if ticks is not None:
            self.watch_process(ProcessRecord(pid, ticks))

    def watch_stack(self, settings: dict[str, Any]) -> None:
        """Stop the stack of these :class:`~chaos.stack.settings.Settings` (as a JSON dump) if the
        run dies. One that cannot be stopped keeps its state folder, watched or not."""
        self._send({"stack": settings})

    def watch_folder(self, folder: Path) -> None:
        """Remove ``folder`` if the run dies."""
        self._send({"folder": str(folder)})

    def release(self) -> None:
        """The run stopped everything itself: the warden exits without doing anything."""
        if self.released:
            return
        self.released = True
        with contextlib.suppress(ComponentError):  # a warden gone has nothing left to do
            self._send({"release": True})
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self._process.wait(timeout=RELEASE_WAIT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    @property
    def _stdin(self) -> IO[bytes]:
        assert self._process.stdin is not None
        return self._process.stdin

    def _send(self, order: dict[str, Any]) -> None:
        try:
            self._stdin.write(json.dumps(order).encode() + b"\n")
            self._stdin.flush()
        except (OSError, ValueError) as exc:  # the warden died: nobody would clean up
            raise ComponentError(
                f"the warden (pid {self._process.pid}) is gone: {exc}",
                f"see {self.log_path}",
            ) from exc


# -- the warden's own process ------------------------------------------------------------------


@dataclass
class Orders:
    """What the run told the warden to look after, in the order it was told."""

    processes: list[ProcessRecord] = field(default_factory=list)
    stacks: list[dict[str, Any]] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    released: bool = False

    def take(self, line: bytes) -> None:
        order = json.loads(line)
        if "process" in order:
            pid, ticks = order["process"]
            self.processes.append(ProcessRecord(int(pid), int(ticks)))
        elif "stack" in order:
            self.stacks.append(order["stack"])
        elif "folder" in order:
            self.folders.append(Path(order["folder"]))
        elif order.get("release"):
            self.released = True

    def carry_out(self, say: Callable[[str], None]) -> bool:
        """Stop the processes (the load first: it keeps the app busy), then the stacks, then
        remove the folders, except a stack's that could not be stopped (its state file is
        what ``harness down`` needs). True if everything is stopped."""
        from isolation_harness.chaos.errors import HarnessError
        from isolation_harness.chaos.stack.lifecycle import Stack
        from isolation_harness.chaos.stack.settings import Settings

        stopped_all = True
        for record in self.processes:
            try:
                stop(record)
                say(f"stopped process {record.pid}")
            except HarnessError as exc:
                stopped_all = False
                say(f"process {record.pid}: {exc}")
        kept: set[Path] = set()
        for dump in self.stacks:
            settings = Settings.model_validate(dump)
            try:
                stopped = _down(Stack(settings, say))
                say(f"stack in {settings.state_dir}: {'stopped' if stopped else 'not running'}")
            except HarnessError as exc:
                kept.add(settings.state_dir.resolve())
                say(f"stack in {settings.state_dir}: {exc}; run `harness down` there")
        for folder in self.folders:
            if folder.resolve() in kept:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            say(f"removed {folder}")
        return stopped_all and not kept


def _down(stack: Stack) -> bool:
    """``stack.down()``, without the app's drain (nobody waits for its answers), after any
    other command stopping it meanwhile (``harness down``) has ended."""
    deadline = time.monotonic() + BUSY_WAIT
    while True:
        try:
            return stack.down(drain=0.0)
        except StackBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main(argv: list[str]) -> int:
    log_path = Path(argv[0])
    orders = Orders()
    for line in sys.stdin.buffer:  # until the release, or the run's process is gone
        orders.take(line)
        if orders.released:
            return 0
    try:
        log: IO[str] = log_path.open("a")
    except OSError:  # its folder is gone already: nothing to say it in
        log = open(os.devnull, "w")  # noqa: SIM115 - closed below
    with log:

        def say(message: str) -> None:
            print(message, file=log, flush=True)

        say("the run's process ended without stopping what it started: stopping it")
        if not orders.carry_out(say):
            return 1
    log_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
