"""A provider's fake misbehaving through its ``/_control/mode`` API: the payment provider
(which deposits call) or the price source (which swap and express price with)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import aiohttp
from pydantic import Field, model_validator

from isolation_harness.chaos.errors import FieldProblem, HarnessError
from isolation_harness.chaos.faults.base import PROVIDER_SERVICE, Moment, Signature
from isolation_harness.chaos.faults.context import FaultContext
from isolation_harness.chaos.faults.control import (
    ControlledFault,
    call,
    fake_fix,
    fake_mode,
    fake_url,
)

#: the misbehaviours each provider fake offers (``normal`` mends it)
PROVIDER_MODES: Mapping[str, frozenset[str]] = {
    "payments": frozenset({"error", "slow", "malformed"}),
    "prices": frozenset({"error", "slow", "malformed", "stale"}),
}
_MAX_DELAY_MS = 600_000


class ProviderFault(ControlledFault):
    """Make an external provider's fake misbehave for the phase.

    ``error`` answers ``status`` (None: the fake's default, 503); ``slow`` waits ``delay_ms``;
    ``malformed`` answers half a body; ``stale`` (prices only) answers prices
    ``stale_seconds`` old (None: the fake's default, an hour). Revert sets the mode
    ``normal``. Its evidence: the fake counted the misbehaving answers it gave.
    """

    type: Literal["provider"] = "provider"
    target: Literal["payments", "prices"]
    mode: Literal["error", "slow", "malformed", "stale"]
    status: Annotated[int, Field(strict=True, ge=400, le=599)] | None = None
    delay_ms: Annotated[int, Field(strict=True, ge=1, le=_MAX_DELAY_MS)] | None = None
    stale_seconds: Annotated[int, Field(strict=True, ge=1, le=10**9)] | None = None

    @model_validator(mode="after")
    def _settings_of_mode(self) -> ProviderFault:
        if self.mode not in PROVIDER_MODES[self.target]:
            offering = " and ".join(t for t, modes in PROVIDER_MODES.items() if self.mode in modes)
            raise FieldProblem(
                f"mode {self.mode!r} is offered by the {offering} provider only", "mode"
            )
        if self.mode == "slow" and self.delay_ms is None:
            raise FieldProblem("mode 'slow' needs delay_ms (milliseconds)", "delay_ms")
        for setting, mode in (
            ("status", "error"),
            ("delay_ms", "slow"),
            ("stale_seconds", "stale"),
        ):
            if getattr(self, setting) is not None and self.mode != mode:
                raise FieldProblem(
                    f"{setting} applies to mode {mode!r} only, not {self.mode!r}", setting
                )
        return self

    @property
    def target_service(self) -> str | None:
        return PROVIDER_SERVICE[self.target]

    @property
    def signature(self) -> Signature:
        return Signature("provider", fails_fast=self.mode == "error")

    def describe(self, ctx: FaultContext | None = None) -> str:
        detail = {
            "error": f" (HTTP {self.status or 503})",
            "slow": f" ({self.delay_ms} ms)",
            "stale": f" ({self.stale_seconds or 3600} s old)",
        }.get(self.mode, "")
        return f"{self.target} provider {self.mode}{detail}"

    async def _set(self, ctx: FaultContext, body: dict[str, Any]) -> None:
        url = f"{fake_url(ctx, self.target)}/_control/mode"
        what = f"set the {self.target} fake's mode to {body['mode']}"
        await call(ctx, "POST", url, what, fake_fix(self.target), body=body)

    async def _set_broken(self, ctx: FaultContext) -> None:
        body: dict[str, Any] = {"mode": self.mode}
        for setting in ("status", "delay_ms", "stale_seconds"):
            value = getattr(self, setting)
            if value is not None:
                body[setting] = value
        await self._set(ctx, body)

    async def _set_mended(self, ctx: FaultContext) -> None:
        await self._set(ctx, {"mode": "normal"})

    async def active(self, ctx: FaultContext) -> bool:
        return await fake_mode(ctx, self.target) == self.mode

    async def observe(self, ctx: FaultContext, when: Moment) -> dict[str, Any]:
        """How many misbehaving answers the fake gave so far: before the fault, and once
        it is reverted."""
        if when == "after":
            return {}
        try:
            async with ctx.http.get(
                f"{fake_url(ctx, self.target)}/_control/mode",
                timeout=aiohttp.ClientTimeout(total=2),
            ) as answer:
                body = await answer.json()
        except (HarnessError, aiohttp.ClientError, TimeoutError, ValueError):
            return {}
        count = body.get("misbehaved") if isinstance(body, dict) else None
        moment = "before" if when == "before" else "after"
        return {f"misbehaved_{moment}": count} if isinstance(count, int) else {}
