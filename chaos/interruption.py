"""Ctrl-C for runs in several threads at once (``harness suite --jobs N``).

Each run has its own event loop in its own thread, and only the main thread receives
signals. An :class:`Interruption` holds the runs going on; SIGINT or SIGTERM in the main
thread cancels every one of them in its own loop, and each reverts its faults and stops its
stack as a single run does on Ctrl-C (:func:`chaos.run.runner.run_scenario`).

A run that handles the signals itself (no :class:`Interruption` given: a script, a pytest
worker) raises :class:`RunInterrupted` once it has cleaned up, so that its caller stops as
Ctrl-C stops any Python program, instead of going on (a pytest worker would start the next
test's stack, and be killed in the middle of it when the session ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from isolation_harness.chaos.run.record import RunRecord

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM, after it reverted its faults and stopped its stack;
    ``record`` is the run so far (interrupted)."""

    def __init__(self, record: RunRecord) -> None:
        super().__init__("interrupted (SIGINT/SIGTERM)")
        self.record = record


class Interruption:
    """The runs to cancel on Ctrl-C; once interrupted, a run that starts is cancelled at once.

    Each run is cancelled once: a second Ctrl-C must not cancel the cleanup the first one
    started (reverting faults, stopping the stack).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[asyncio.Task[Any], asyncio.AbstractEventLoop] = {}
        self.interrupted = False

    def interrupt(self) -> None:
        """Cancel every run going on, and any run that starts later (once)."""
        with self._lock:  # a run leaves (and its loop closes) only after this
            if self.interrupted:
                return
            self.interrupted = True
            for task, loop in self._runs.items():
                loop.call_soon_threadsafe(task.cancel)

    @contextlib.contextmanager
    def watching(self, task: asyncio.Task[Any]) -> Iterator[None]:
        """Within the block, :meth:`interrupt` cancels ``task`` (in its own loop)."""
        with self._lock:
            self._runs[task] = task.get_loop()
            if self.interrupted:
                task.cancel()
        try:
            yield
        finally:
            with self._lock:
                del self._runs[task]

    @contextlib.contextmanager
    def on_signals(self) -> Iterator[None]:
        """Within the block, SIGINT and SIGTERM interrupt instead of ending the process (main
        thread only: elsewhere nothing changes)."""

        def interrupt(signum: int, frame: FrameType | None) -> None:
            self.interrupt()

        with _handled(interrupt):
            yield


@contextlib.contextmanager
def deferred(what: str) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM wait for it to end, then take effect as they would
    have (main thread only: elsewhere nothing changes).

    For stopping a stack: cut half-way, it would leave PostgreSQL and Toxiproxy running with
    nothing running to stop them, and every step of a stop ends on its own within seconds.
    """
    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        if not caught:  # straight to the file: the interrupted code may be writing to stderr
            with contextlib.suppress(OSError):
                os.write(2, f"interrupted: {what} first\n".encode())
        caught.append(signum)

    try:
        with _handled(hold):
            yield
    finally:
        if caught:  # delivered again, to the handlers of before
            signal.raise_signal(caught[0])


@contextlib.contextmanager
def _handled(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """Within the block, ``handler`` answers SIGINT and SIGTERM; the handlers of before are
    put back after it. Only the main thread can set handlers: elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before if before is not None else signal.SIG_DFL)
