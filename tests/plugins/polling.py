"""Waiting in tests for something that becomes true on its own (a worker, a feed, a fault)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def until(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``check`` (plain or async) until it returns something truthy; return that.

    Raises ``TimeoutError`` after ``timeout`` seconds.
    """
    async with asyncio.timeout(timeout):
        while True:
            value = check()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(interval)


def wait_until(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """:func:`until` without an event loop, for a test that must clean up at once when it is
    interrupted: Ctrl-C raised while a loop waits leaves a coroutine's ``finally`` for the
    loop's teardown, after fixtures it relies on are gone (a test's folder removed while the
    child it was to stop went on starting a stack in it).

    Raises ``TimeoutError`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true after {timeout:g} s")
        time.sleep(interval)
