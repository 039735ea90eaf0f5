"""An interrupted command gets to stop what it started (tests/plugins/commands.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugins import commands

#: a command that answers SIGINT as ``harness`` does: a second of cleanup, then exit 130
CLEANS_UP = """
import os, signal, sys, time
folder = sys.argv[1]
interrupts = []
signal.signal(signal.SIGINT, lambda signum, frame: interrupts.append(signum))
with open(os.path.join(folder, "pid"), "w") as f:
    f.write(str(os.getpid()))
while not interrupts:
    time.sleep(0.01)
time.sleep(1.0)
with open(os.path.join(folder, "cleaned"), "w") as f:
    f.write(str(len(interrupts)))
sys.exit(130)
"""


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def pid_in(folder: Path) -> int:
    for _ in range(500):
        if (folder / "pid").exists() and (folder / "pid").read_text():
            return int((folder / "pid").read_text())
        time.sleep(0.01)
    raise AssertionError("the command never started")


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in this process, whatever the test runner set."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_timed_out_command_is_interrupted_and_finishes_its_cleanup(tmp_path: Path) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        commands.run([sys.executable, "-c", CLEANS_UP, str(tmp_path)], timeout=1.0)
    # subprocess.run would have killed it at once: no cleanup
    assert (tmp_path / "cleaned").read_text() == "1"
    assert gone(pid_in(tmp_path))


def test_ctrl_c_waits_for_the_command_and_sends_no_second_sigint(
    tmp_path: Path, sigint_raises: None
) -> None:
    def terminal_ctrl_c() -> None:
        """What a terminal does: SIGINT to the command and to this process."""
        os.kill(pid_in(tmp_path), signal.SIGINT)
        signal.pthread_kill(main, signal.SIGINT)  # to the main thread: it waits in a poll

    main = threading.get_ident()
    threading.Thread(target=terminal_ctrl_c).start()
    with pytest.raises(KeyboardInterrupt):
        commands.run([sys.executable, "-c", CLEANS_UP, str(tmp_path)], timeout=30)
    # subprocess.run would have killed it after a quarter of a second
    assert (tmp_path / "cleaned").read_text() == "1"
    assert gone(pid_in(tmp_path))


def test_a_second_interruption_does_not_cut_the_command_s_cleanup(
    tmp_path: Path, sigint_raises: None
) -> None:
    """Ctrl-C, then another SIGINT to this process while the command cleans up (what an
    xdist worker sends itself when its controller goes): still waited for."""

    def two_interruptions() -> None:
        os.kill(pid_in(tmp_path), signal.SIGINT)
        signal.pthread_kill(main, signal.SIGINT)
        time.sleep(0.3)  # the command is cleaning up (for a second)
        signal.pthread_kill(main, signal.SIGINT)

    main = threading.get_ident()
    threading.Thread(target=two_interruptions).start()
    with pytest.raises(KeyboardInterrupt):
        commands.run([sys.executable, "-c", CLEANS_UP, str(tmp_path)], timeout=30)
    assert (tmp_path / "cleaned").read_text() == "1"  # its cleanup was not cut short
    assert gone(pid_in(tmp_path))


def test_a_command_that_will_not_stop_is_killed_after_the_grace(tmp_path: Path) -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        commands.run([sys.executable, "-c", stubborn], timeout=0.5, grace=0.5)
    assert time.monotonic() - started < 30  # killed, not waited for


def test_a_command_that_ends_gives_its_output_and_exit_code() -> None:
    done = commands.run(
        [sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); exit(3)"],
        timeout=30,
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
