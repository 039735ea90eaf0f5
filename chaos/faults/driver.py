"""Faults driven from synchronous code (a pytest test, a Chaos Toolkit activity).

A :class:`FaultLoop` is an event loop in a thread of its own, with the stack's
:class:`FaultContext` in it, for as long as a fault acts: a fault may keep work going
between ``apply`` and ``revert`` (a held lock, leaked connections), which needs its loop
alive in between.

    with FaultLoop(state) as loop:
        loop.act(fault.apply)
        ...
        loop.act(fault.revert)
        assert loop.act(residue) == []
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import aiohttp

from isolation_harness.chaos.errors import ComponentError
from isolation_harness.chaos.faults.context import FaultContext
from isolation_harness.chaos.stack.state import StackState
from isolation_harness.chaos.toxiproxy.client import ToxiproxyClient

T = TypeVar("T")


class FaultLoop:
    """The stack's fault context on an event loop of its own, until :meth:`close`."""

    def __init__(self, state: StackState) -> None:
        if state.toxiproxy is None:
            raise ComponentError("the stack runs no Toxiproxy server", "start it with `harness up`")
        self.state = state
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._resources = contextlib.AsyncExitStack()
        self.ctx: FaultContext | None = None

    def open(self) -> FaultLoop:
        self.thread.start()
        try:
            self._run(self._open())
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        try:
            if self.thread.is_alive():
                self._run(self._resources.aclose())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            if self.thread.is_alive():
                self.thread.join()
            self.loop.close()

    def __enter__(self) -> FaultLoop:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def _open(self) -> None:
        assert self.state.toxiproxy is not None
        toxiproxy = await self._resources.enter_async_context(
            ToxiproxyClient(self.state.toxiproxy.url)
        )
        http = await self._resources.enter_async_context(aiohttp.ClientSession())
        self.ctx = FaultContext.from_stack(self.state, toxiproxy, http)

    def act(self, step: Callable[[FaultContext], Coroutine[Any, Any, T]]) -> T:
        """``step(ctx)`` run on the loop; its result, or its exception."""
        assert self.ctx is not None, "open() first"
        return self._run(step(self.ctx))

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()
