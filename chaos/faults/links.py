"""Faults on a link, through its Toxiproxy proxy: cut (:class:`LinkDown`) or a toxic on it
(:class:`Toxic`: latency, timeout, bandwidth, reset_peer…).

**Legacy design.** There every service's database traffic goes through the one shared pool
and its link, ``pg_shared``; the per-service links carry nothing. So in the legacy design a
link fault on ``pg_<service>`` is refused (:func:`legacy_refusal`): it would do nothing, and
moved to ``pg_shared`` it would cut every service, which proves nothing about isolation.
``pg_shared`` itself may be faulted: every service is its target. Links to the provider
fakes are the same in both designs.
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from typing import Annotated, Any, Literal
from uuid import uuid4

from pydantic import Field, PrivateAttr, StrictFloat, ValidationInfo, field_validator

from isolation_harness.chaos.errors import (
    AlreadyExists,
    ConfigError,
    FieldProblem,
    HarnessError,
    ProxyNotFound,
    ToxicNotFound,
    ToxiproxyError,
)
from isolation_harness.chaos.faults.base import PROVIDER_SERVICE, Fault, LinkName, Signature
from isolation_harness.chaos.faults.context import FaultContext
from isolation_harness.chaos.toxiproxy.client import TOXIC_ATTRIBUTES, TOXIC_TYPES
from isolation_harness.topology.links import SHARED_LINK, link_named
from isolation_harness.topology.services import Variant


def legacy_refusal(name: str) -> tuple[str, str] | None:
    """Why a fault on link ``name`` is refused in the legacy design (message, hint), or None.

    There every service's database traffic goes through :data:`SHARED_LINK`; a service's own
    ``pg_<service>`` link carries nothing. Cutting it would do nothing, and cutting the
    shared link in its place would cut every service: neither proves anything about
    isolation, so neither is done.
    """
    link = link_named(name)
    if link.target != "postgres" or link.name == SHARED_LINK:
        return None
    return (
        f"link {name} carries no traffic in the legacy design: every service's database "
        f"traffic goes through {SHARED_LINK}, and cutting that instead would cut every "
        "service, which proves nothing about isolation",
        f"confine the fault to {link.service}'s own code (type: service, service: "
        f"{link.service}, mode: hang, slow, leak or raise), or name {SHARED_LINK} for a fault "
        "on every service's database traffic",
    )


def checked_link(link: str, variant: Variant) -> str:
    """``link``, if a fault may act on it in ``variant`` (see :func:`legacy_refusal`)."""
    refusal = legacy_refusal(link) if variant == "legacy" else None
    if refusal is not None:
        raise ConfigError(*refusal)
    return link


def link_service(link: str) -> str | None:
    """The app service whose traffic ``link`` carries (None: the shared link, every one)."""
    found = link_named(link)
    if found.target != "postgres":
        return PROVIDER_SERVICE[found.target]
    return None if found.name == SHARED_LINK else found.service


def _refused(exc: HarnessError) -> bool:
    """Whether a Toxiproxy call that raised ``exc`` certainly changed nothing: refused
    before sending, or answered 4xx (a 5xx or no answer leaves it open)."""
    return isinstance(exc, ConfigError) or (
        isinstance(exc, ToxiproxyError) and 400 <= exc.status < 500
    )


class _LinkFault(Fault):
    """What both link faults share: the link, its target, the legacy refusal, and acting on
    the link's proxy (``_break``, ``_mend``, ``_in_place``) once it is known."""

    link: LinkName
    _proxy: str | None = PrivateAttr(default=None)

    @property
    def target_service(self) -> str | None:
        return link_service(self.link)

    def legacy_refusal(self) -> tuple[str, str, str] | None:
        refusal = legacy_refusal(self.link)
        return None if refusal is None else ("link", *refusal)

    @abstractmethod
    async def _break(self, ctx: FaultContext, proxy: str) -> None: ...

    @abstractmethod
    async def _mend(self, ctx: FaultContext, proxy: str) -> None: ...

    @abstractmethod
    async def _in_place(self, ctx: FaultContext, proxy: str) -> bool: ...

    async def apply(self, ctx: FaultContext) -> None:
        proxy = ctx.proxy_for(checked_link(self.link, ctx.variant))
        self._proxy = proxy
        await self._shielded(self._break_once(ctx, proxy))

    async def _break_once(self, ctx: FaultContext, proxy: str) -> None:
        try:
            await self._break(ctx, proxy)
        except (ToxiproxyError, ConfigError) as exc:
            if _refused(exc):
                self._proxy = None  # nothing was changed: nothing to mend
            raise

    async def revert(self, ctx: FaultContext) -> None:
        await self._settle()
        proxy = self._proxy
        if proxy is None:
            return
        await self._mend(ctx, proxy)
        self._proxy = None

    async def active(self, ctx: FaultContext) -> bool:
        proxy = self._proxy or ctx.proxies.get(self.link)
        if proxy is None:
            return False
        try:
            return await self._in_place(ctx, proxy)
        except ProxyNotFound:
            return False


class LinkDown(_LinkFault):
    """Cut a link: its proxy is disabled (listener closed, open connections dropped) until
    the phase ends. Two faults on one proxy are not counted: the first revert enables it."""

    type: Literal["link_down"] = "link_down"

    @property
    def signature(self) -> Signature:
        return Signature("target", slows=False, fails_fast=True)

    def describe(self, ctx: FaultContext | None = None) -> str:
        return f"link {self.link} down"

    async def _break(self, ctx: FaultContext, proxy: str) -> None:
        await ctx.toxiproxy.disable(proxy)

    async def _mend(self, ctx: FaultContext, proxy: str) -> None:
        with contextlib.suppress(ProxyNotFound):
            await ctx.toxiproxy.enable(proxy)

    async def _in_place(self, ctx: FaultContext, proxy: str) -> bool:
        return not (await ctx.toxiproxy.get_proxy(proxy)).enabled


class Toxic(_LinkFault):
    """A Toxiproxy toxic on a link for the phase, under a name of its own; revert removes it.

    ``attributes`` are the toxic type's (``{"latency": 500}``); ``toxicity`` is the
    probability that a connection is affected, drawn per connection by the server (so a
    pool keeps its luck: pair it with ``recycle``).
    """

    type: Literal["toxic"] = "toxic"
    toxic: str
    attributes: dict[str, Annotated[int, Field(strict=True, ge=0)]] = Field(default_factory=dict)
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: StrictFloat = Field(default=1.0, ge=0.0, le=1.0)
    #: the toxic's name on the server, unique to this object
    _name: str = PrivateAttr(default="")

    def model_post_init(self, context: Any, /) -> None:
        self._name = f"chaos_{self.toxic}_{self.stream}_{uuid4().hex[:8]}"

    @field_validator("toxic")
    @classmethod
    def _known_toxic(cls, toxic: str) -> str:
        if toxic not in TOXIC_TYPES:
            raise ValueError(
                f"unknown toxic type {toxic!r} (known: {', '.join(sorted(TOXIC_TYPES))})"
            )
        return toxic

    @field_validator("attributes")
    @classmethod
    def _attributes_of_type(
        cls, attributes: dict[str, int], info: ValidationInfo
    ) -> dict[str, int]:
        toxic = info.data.get("toxic")
        if toxic is None:  # the type itself is wrong: reported on its own
            return attributes
        known = TOXIC_ATTRIBUTES[toxic]
        for name in attributes:
            if name not in known:
                raise FieldProblem(
                    f"unknown attribute {name!r} of toxic type {toxic!r} "
                    f"(known: {', '.join(sorted(known))})",
                    name,
                )
        return attributes

    @property
    def name(self) -> str:
        """The toxic's name on the Toxiproxy server."""
        return self._name

    @property
    def signature(self) -> Signature:
        return Signature("target")

    def describe(self, ctx: FaultContext | None = None) -> str:
        attrs = ", ".join(f"{k}={v}" for k, v in sorted(self.attributes.items()))
        return (
            f"{self.toxic} toxic ({attrs or 'defaults'}; {self.stream}, "
            f"toxicity {self.toxicity:g}) on link {self.link}"
        )

    async def _break(self, ctx: FaultContext, proxy: str) -> None:
        with contextlib.suppress(AlreadyExists):  # the name is ours: an earlier try got through
            await ctx.toxiproxy.add_toxic(
                proxy,
                self.toxic,
                self.attributes,
                name=self.name,
                stream=self.stream,
                toxicity=float(self.toxicity),
            )

    async def _mend(self, ctx: FaultContext, proxy: str) -> None:
        with contextlib.suppress(ToxicNotFound, ProxyNotFound):
            await ctx.toxiproxy.remove_toxic(proxy, self.name)

    async def _in_place(self, ctx: FaultContext, proxy: str) -> bool:
        return any(toxic.name == self.name for toxic in await ctx.toxiproxy.toxics(proxy))
