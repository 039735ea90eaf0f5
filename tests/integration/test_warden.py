"""The warden: nothing when released; everything stopped and removed when its run dies."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from isolation_harness.chaos.stack import backend
from isolation_harness.chaos.stack.process import ProcessRecord, children_of, stop
from isolation_harness.chaos.stack.state import STATE_FILE, PostgresState, StackState, StateStore
from isolation_harness.chaos.stack.warden import Warden
from isolation_harness.topology.ports import LOOPBACK, free_port
from tests.plugins.polling import until


@pytest.fixture
def sleeper() -> Iterator[ProcessRecord]:
    """A process in a session of its own, as the harness starts Locust."""
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    record = ProcessRecord.of(process.pid)
    try:
        yield record
    finally:
        stop(record, grace=0.1)
        process.wait()


def test_a_released_warden_touches_nothing(sleeper: ProcessRecord, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    log = tmp_path / "warden.log"
    warden = Warden.start(log)
    warden.watch_process(sleeper)
    warden.watch_folder(folder)
    warden.release()
    assert warden.released
    assert sleeper.alive()
    assert folder.is_dir()
    assert not log.exists()


OWNER = """\
import os, signal, sys
from pathlib import Path
from isolation_harness.chaos.stack.process import ProcessRecord
from isolation_harness.chaos.stack.warden import Warden
warden = Warden.start(Path(sys.argv[1]))
warden.watch_process(ProcessRecord(int(sys.argv[2]), int(sys.argv[3])))
warden.watch_folder(Path(sys.argv[4]))
os.kill(os.getpid(), signal.SIGKILL)
"""


async def test_the_warden_of_a_killed_run_stops_its_processes_and_removes_its_folders(
    sleeper: ProcessRecord, tmp_path: Path
) -> None:
    folder = tmp_path / "run"
    (folder / "logs").mkdir(parents=True)
    log = folder / "logs" / "warden.log"
    owner = subprocess.run(
        [sys.executable, "-c", OWNER, str(log), str(sleeper.pid),
         str(sleeper.start_ticks), str(folder)],
        check=False, timeout=30,
    )  # fmt: skip
    assert owner.returncode == -signal.SIGKILL
    await until(lambda: not sleeper.alive() and not folder.exists(), timeout=20, interval=0.05)


async def test_a_warden_that_cannot_stop_a_stack_keeps_its_state_and_says_so(
    tmp_path: Path,
) -> None:
    """A stack whose PostgreSQL port stays taken after the stop: its state folder, which
    `harness down` needs, stays, and the warden's log names what is left."""
    state_dir = tmp_path / "stack"
    with socket.create_server((LOOPBACK, 0)) as listener:
        port = listener.getsockname()[1]
        cluster = PostgresState(
            kind="local", host=LOOPBACK, port=port, dsn=f"host={LOOPBACK} port={port}",
            data_dir=state_dir / "pg" / "data", bin_dir=tmp_path,
        )  # fmt: skip
        StateStore(state_dir).save(StackState(postgres=cluster))
        log = tmp_path / "warden.log"
        owner = subprocess.run(
            [sys.executable, "-c", STACK_OWNER, str(log), str(state_dir)], check=False, timeout=30
        )
        assert owner.returncode == -signal.SIGKILL
        said = await until(lambda: log.exists() and "harness down" in log.read_text(), 30)
    assert said
    text = log.read_text()
    assert f"stack in {state_dir}: PostgreSQL port {port} still listening" in text, text
    assert (state_dir / STATE_FILE).exists()


STACK_OWNER = """\
import os, signal, sys
from pathlib import Path
from isolation_harness.chaos.stack.settings import Settings
from isolation_harness.chaos.stack.warden import Warden
warden = Warden.start(Path(sys.argv[1]))
state_dir = Path(sys.argv[2])
warden.watch_stack(Settings(state_dir=state_dir).model_dump(mode="json"))
warden.watch_folder(state_dir)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_each_fake_is_named_before_the_next_one_is_started(tmp_path: Path) -> None:
    """What the warden (and `harness down`) stops is what the state file names: a run killed
    between two starts must have named the first. Both fakes used to be recorded together."""
    state = StackState(fake_ports={"payments": free_port(), "prices": free_port()})
    named: dict[str, ProcessRecord] = {}
    others_when_named: dict[str, set[int]] = {}
    before = set(children_of(os.getpid()))

    def on_spawn(name: str, record: ProcessRecord) -> None:
        named[name] = record
        started = set(children_of(os.getpid())) - before
        others_when_named[name] = started - {r.pid for r in named.values()}

    try:
        backend.start_fakes(state, tmp_path, "secret", on_spawn)
    finally:
        for record in named.values():
            stop(record, grace=1.0)
    assert list(named) == ["payments_fake", "prices_fake"]
    assert others_when_named == {"payments_fake": set(), "prices_fake": set()}


async def test_the_warden_waits_for_another_command_stopping_the_same_stack(
    tmp_path: Path,
) -> None:
    """`harness down` (or a test's teardown) stopping the stack when the run dies: the warden
    waits for it to end instead of giving up and leaving the folder."""
    state_dir = tmp_path / "stack"
    store = StateStore(state_dir)
    store.save(StackState())
    log = tmp_path / "warden.log"
    with store.locked():
        owner = subprocess.run(
            [sys.executable, "-c", STACK_OWNER, str(log), str(state_dir)], check=False, timeout=30
        )
        assert owner.returncode == -signal.SIGKILL
        await until(log.exists, timeout=20)
        await asyncio.sleep(1.0)  # the warden would have given up by now
        assert state_dir.exists(), log.read_text()
        store.clear()  # the other command stopped the stack
    # then it removes its log: it stopped everything
    await until(lambda: not state_dir.exists() and not log.exists(), timeout=20)
