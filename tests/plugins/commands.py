"""Commands that start processes of their own (``harness``, a child pytest), run to their end.

``subprocess.run`` kills its child a quarter of a second after Ctrl-C (and at its timeout),
long before a ``harness`` command has reverted its faults and stopped the PostgreSQL,
Toxiproxy, app and Locust processes it started: they would be left running. :func:`run`
gives the child SIGINT instead (its own Ctrl-C, which it answers by cleaning up) and time
to finish, and kills it only when that time is over.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

#: seconds a command gets to stop what it started once interrupted (a stack stops in a few)
STOP_GRACE = 30.0


def run(
    args: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    grace: float = STOP_GRACE,
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(args, capture_output=True, text=True)``, but an interruption (Ctrl-C,
    ``timeout``, the test's own time limit) stops the child as Ctrl-C would, waiting up to
    ``grace`` seconds before killing it. The interruption is raised again afterwards."""
    with subprocess.Popen(
        list(args), env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except KeyboardInterrupt:
            # Ctrl-C reached the child too (a terminal signals its whole process group), and
            # a second one could cut the child's cleanup short: only wait for it.
            stop(process, grace, interrupt=False)
            raise
        except BaseException:
            stop(process, grace)
            raise
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def stop(
    process: subprocess.Popen[str], grace: float = STOP_GRACE, *, interrupt: bool = True
) -> None:
    """SIGINT to ``process`` (if ``interrupt``), then up to ``grace`` seconds for it to end,
    then SIGKILL.

    A further interruption meanwhile (a second Ctrl-C, or the one an xdist worker sends
    itself when its controller goes) does not cut the wait: the caller's clean-up would
    then remove the folders the command is still stopping its stack from (a benchmark's
    stack was left running so: its state file was gone before it could read it). It is
    raised once the command has ended."""
    if interrupt and process.poll() is None:
        process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace
    again: KeyboardInterrupt | None = None
    while True:
        try:
            # reads its pipes meanwhile: a full one would block it
            process.communicate(timeout=max(0.0, deadline - time.monotonic()))
            break
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            break
        except KeyboardInterrupt as exc:
            again = exc
    if again is not None:
        raise again
