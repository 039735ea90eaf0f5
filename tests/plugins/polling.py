"""Waiting in tests for something that becomes true on its own (a worker, a feed, a fault)."""

from __future__ import annotations

import asyncio
import inspect
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
