"""Faults injected on purpose into one service through the fault API (chaos scenarios).

Modes: ``raise`` (the service's code raises once it has the first database connection of
a use case in hand, as a bug in it would, before it has changed anything), ``hang`` (calls
hold a database connection and never finish until the fault is cleared), ``slow`` (calls
hold a connection ``slow_ms`` longer), ``leak`` (the service's pool connections are taken
and held).

The switches only act on the service they name, in the same place in both designs; what a
fault does to the *other* services is up to the design (see ``reference_app/legacy.py``).

With several worker processes the switches live in a small JSON file that every worker
watches, so a fault set through any worker breaks the service in all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

WATCH_INTERVAL = 0.05
#: how long a change takes to reach every worker, at most: a poll interval and some slack
PROPAGATION = 3 * WATCH_INTERVAL


class InjectedFailure(RuntimeError):
    """The error the ``raise`` mode throws inside a service's code: not an :class:`AppError`,
    so only an error boundary turns it into an answer naming the service."""

    def __init__(self, service: str) -> None:
        super().__init__(f"{service} is broken on purpose (fault API: raise)")
        self.service = service


class FaultMode(StrEnum):
    NONE = "none"
    RAISE = "raise"
    HANG = "hang"
    SLOW = "slow"
    LEAK = "leak"


@dataclass(frozen=True)
class Fault:
    """The fault of one service."""

    mode: FaultMode = FaultMode.NONE
    slow_ms: int = 0


NO_FAULT = Fault()

#: the services that took a database connection in the use case running now
_taken: ContextVar[set[str] | None] = ContextVar("connections_taken", default=None)


@contextlib.contextmanager
def use_case() -> Iterator[None]:
    """The scope of one use case of a service (its boundary opens it, in both designs): the
    ``raise`` fault fires at the use case's first connection of the faulted service, so a
    fault set half-way through lets a use case that already changed something finish."""
    token = _taken.set(set())
    try:
        yield
    finally:
        _taken.reset(token)


def _first_connection(service: str) -> bool:
    taken = _taken.get()
    if taken is None:  # outside any use case: every connection is a first one
        return True
    first = service not in taken
    taken.add(service)
    return first


#: starts holding a service's connections; the returned task releases them when cancelled
Leaker = Callable[[str], Awaitable[asyncio.Task[None]]]


class FaultSwitches:
    """The fault of every service, shared by the worker processes through ``state_file``."""

    def __init__(self, services: tuple[str, ...], state_file: Path | None = None) -> None:
        self.services = services
        self._state_file = state_file
        self._faults: dict[str, Fault] = dict.fromkeys(services, NO_FAULT)
        self._changed: dict[str, asyncio.Event] = {s: asyncio.Event() for s in services}
        self._leaks: dict[str, asyncio.Task[None]] = {}
        self._leaker: Leaker | None = None
        self._seen_mtime = 0

    def attach_leaker(self, leaker: Leaker) -> None:
        """Give the switches the way to hold a service's connections (the pools)."""
        self._leaker = leaker

    def get(self, service: str) -> Fault:
        return self._faults[service]

    def all(self) -> dict[str, Fault]:
        return dict(self._faults)

    async def set(self, service: str, fault: Fault) -> None:
        """Set ``service``'s fault here and, with a state file, in every worker."""
        await self._apply({**self._faults, service: fault})
        await self._publish()

    async def clear_all(self) -> None:
        await self._apply(dict.fromkeys(self.services, NO_FAULT))
        await self._publish()

    async def _publish(self) -> None:
        """Write the state file and wait until every worker has read it (they poll it), so
        that when the fault API answers, the change holds in every worker."""
        if self._state_file is None:
            return
        self._write()
        await asyncio.sleep(PROPAGATION)

    # -- what the services call -----------------------------------------------------------

    async def on_connection(self, service: str) -> None:
        """With a connection in hand: raise in ``raise`` mode (at the use case's first), stall
        in ``hang`` and ``slow``."""
        first = _first_connection(service)
        fault = self._faults[service]
        if fault.mode is FaultMode.RAISE and first:
            raise InjectedFailure(service)
        if fault.mode is FaultMode.SLOW and fault.slow_ms > 0:
            await asyncio.sleep(fault.slow_ms / 1000)
        elif fault.mode is FaultMode.HANG:
            while self._faults[service].mode is FaultMode.HANG:
                self._changed[service].clear()
                await self._changed[service].wait()

    # -- sharing between workers ------------------------------------------------------------

    async def watch(self) -> None:
        """Follow the state file (run as a task by each worker)."""
        if self._state_file is None:
            return
        while True:
            await self.reload()
            await asyncio.sleep(WATCH_INTERVAL)

    async def reload(self) -> None:
        """Apply the state file if it changed since last seen."""
        if self._state_file is None:
            return
        try:
            mtime = self._state_file.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime == self._seen_mtime:
            return
        self._seen_mtime = mtime
        try:
            raw = json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return  # caught mid-write by another worker: the next tick reads it whole
        faults = {
            s: Fault(FaultMode(raw[s]["mode"]), int(raw[s].get("slow_ms", 0)))
            for s in self.services
            if s in raw
        }
        await self._apply({**dict.fromkeys(self.services, NO_FAULT), **faults})

    def _write(self) -> None:
        if self._state_file is None:
            return
        payload = {s: {**asdict(f), "mode": f.mode.value} for s, f in self._faults.items()}
        tmp = self._state_file.with_name(f".{self._state_file.name}.{os.getpid()}")
        tmp.write_text(json.dumps(payload))
        os.replace(tmp, self._state_file)
        self._seen_mtime = self._state_file.stat().st_mtime_ns

    async def _apply(self, faults: dict[str, Fault]) -> None:
        for service, fault in faults.items():
            previous = self._faults[service]
            self._faults[service] = fault
            if fault != previous:
                self._changed[service].set()
            if fault.mode is FaultMode.LEAK and service not in self._leaks:
                if self._leaker is not None:
                    self._leaks[service] = await self._leaker(service)
            elif fault.mode is not FaultMode.LEAK and service in self._leaks:
                await _cancel(self._leaks.pop(service))

    async def close(self) -> None:
        """Release every leak and wake every hung call (app shutdown)."""
        for service in list(self._leaks):
            await _cancel(self._leaks.pop(service))
        self._faults = dict.fromkeys(self.services, NO_FAULT)
        for event in self._changed.values():
            event.set()


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
