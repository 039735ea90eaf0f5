"""The local stack's state file: what ``harness up`` started, so that ``down`` can stop it.

It is written after each step of ``up`` (atomically), so ``down`` finds everything even
when ``up`` was killed half-way.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from isolation_harness.chaos.errors import ConfigError, StackBusy
from isolation_harness.chaos.stack.process import ProcessRecord
from isolation_harness.topology.services import Variant
from isolation_harness.topology.state_file import STATE_FILE


class ProcessState(BaseModel):
    """A process recorded by pid and start time."""

    pid: int
    start_ticks: int

    @classmethod
    def of(cls, record: ProcessRecord) -> ProcessState:
        return cls(pid=record.pid, start_ticks=record.start_ticks)

    def record(self) -> ProcessRecord:
        return ProcessRecord(self.pid, self.start_ticks)


class PostgresState(BaseModel):
    """The PostgreSQL server of the stack: a local cluster, or an external one."""

    kind: Literal["local", "external"]
    host: str
    port: int
    dsn: str
    data_dir: Path | None = None
    bin_dir: Path | None = None


class ToxiproxyState(BaseModel):
    """The Toxiproxy server: started by the harness (``process`` set) or external."""

    kind: Literal["local", "external"]
    url: str
    port: int | None = None
    process: ProcessState | None = None
    binary: str | None = None
    version: str | None = None


class LinkState(BaseModel):
    """One proxy: where it listens and where it forwards to."""

    listen: str
    upstream: str

    @property
    def listen_port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


class AppState(BaseModel):
    """The reference app as the stack runs it."""

    url: str
    port: int
    variant: Variant
    workers: int
    admin_token: str
    settings_file: Path


class StackState(BaseModel):
    """Everything ``harness up`` started or uses."""

    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    postgres: PostgresState | None = None
    toxiproxy: ToxiproxyState | None = None
    links: dict[str, LinkState] = Field(default_factory=dict)
    #: ports of the provider fakes behind the ``payments`` and ``prices`` links
    fake_ports: dict[str, int] = Field(default_factory=dict)
    #: the fakes and the app (``payments_fake``, ``prices_fake``, ``app``)
    processes: dict[str, ProcessState] = Field(default_factory=dict)
    app: AppState | None = None


class StateStore:
    """Reads and writes the state file in ``state_dir``; serialises concurrent commands."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / STATE_FILE

    def load(self) -> StackState | None:
        """The saved state, or None if nothing is recorded."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        try:
            return StackState.model_validate_json(text)
        except ValidationError as exc:
            raise ConfigError(
                f"the state file {self.path} is corrupt ({exc.errors()[0]['msg']})",
                "stop what it started by hand, then delete the file",
            ) from None

    def save(self, state: StackState) -> None:
        """Write ``state`` atomically."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(state.model_dump_json(indent=2))
        os.replace(tmp, self.path)

    def clear(self) -> None:
        """Forget the state (after everything was stopped)."""
        self.path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the stack's lock: one ``up``/``down`` at a time per state folder."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / "lock").open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StackBusy(
                    f"another harness command is changing the stack in {self.state_dir}",
                    "wait for it to finish",
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
