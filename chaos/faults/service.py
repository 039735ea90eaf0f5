"""One service broken on purpose through the app's fault API (``PUT /api/_faults/{service}``),
and :class:`Recycle`, which makes a link fault decided per connection bite at once."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from isolation_harness.chaos.errors import FieldProblem
from isolation_harness.chaos.faults.base import ServiceName, Signature
from isolation_harness.chaos.faults.context import FaultContext
from isolation_harness.chaos.faults.control import (
    APP_FIX,
    ControlledFault,
    app_faults,
    app_url,
    call,
)


class ServiceFault(ControlledFault):
    """Break one service for the phase: ``raise`` (its calls fail at once), ``hang`` (they
    never finish), ``slow`` (they hold their connection ``slow_ms`` longer) or ``leak`` (its
    pool's connections are held). Revert sets the mode ``none``."""

    type: Literal["service"] = "service"
    service: ServiceName
    mode: Literal["raise", "hang", "slow", "leak"]
    slow_ms: Annotated[int, Field(strict=True, ge=1, le=600_000)] | None = None

    @model_validator(mode="after")
    def _slow_ms_with_slow(self) -> ServiceFault:
        if self.mode == "slow" and self.slow_ms is None:
            raise FieldProblem("mode 'slow' needs slow_ms (milliseconds)", "slow_ms")
        if self.mode != "slow" and self.slow_ms is not None:
            raise FieldProblem(f"slow_ms applies to mode 'slow' only, not {self.mode!r}", "slow_ms")
        return self

    @property
    def target_service(self) -> str | None:
        return self.service

    @property
    def signature(self) -> Signature:
        return Signature(
            "target",
            slows=self.mode != "raise",
            holds=self.mode == "leak",
            fails_fast=self.mode in ("raise", "leak"),
        )

    def describe(self, ctx: FaultContext | None = None) -> str:
        extra = f" (+{self.slow_ms} ms per call)" if self.mode == "slow" else ""
        return f"service {self.service} broken: {self.mode}{extra}"

    async def _set(self, ctx: FaultContext, mode: str) -> None:
        body = {"mode": mode, "slow_ms": self.slow_ms if mode == "slow" else 0}
        url = app_url(ctx, f"/api/_faults/{self.service}")
        what = f"set {self.service}'s fault to {mode}"
        await call(ctx, "PUT", url, what, APP_FIX, body=body, admin=True)

    async def _set_broken(self, ctx: FaultContext) -> None:
        await self._set(ctx, self.mode)

    async def _set_mended(self, ctx: FaultContext) -> None:
        await self._set(ctx, "none")

    async def active(self, ctx: FaultContext) -> bool:
        return (await app_faults(ctx)).get(self.service) == self.mode


class Recycle:
    """Not a fault but its helper: the app closes the service's idle database connections,
    so that a link fault decided per connection (toxicity) bites at once. Nothing to revert."""

    def __init__(self, service: str) -> None:
        self.service = service

    def describe(self, ctx: FaultContext | None = None) -> str:
        return f"recycle {self.service}'s idle database connections"

    @property
    def target_service(self) -> str | None:
        return self.service

    async def apply(self, ctx: FaultContext) -> None:
        url = app_url(ctx, f"/api/_faults/{self.service}/recycle")
        what = f"recycle {self.service}'s connections"
        await call(ctx, "POST", url, what, APP_FIX, admin=True)

    async def revert(self, ctx: FaultContext) -> None:
        return None

    async def active(self, ctx: FaultContext) -> bool:
        return False
