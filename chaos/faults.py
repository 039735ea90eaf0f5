"""Faults the scenario runner injects, each an object with ``apply()`` and ``revert()``.

Every fault is a dataclass holding what to break; the stack it acts on comes in a
:class:`FaultContext`, given to each call::

    fault = LinkDown("pg_p2p")
    try:
        await fault.apply(ctx)
        ...                                  # the phase runs
    finally:
        await fault.revert(ctx)
    assert not await fault.active(ctx)
    assert await residue(ctx) == []

The contract every fault keeps:

* ``await apply(ctx)`` breaks the thing, once per object. Errors come out as the harness's
  own (:mod:`chaos.errors`): a call the component refused or could not receive as
  :class:`~chaos.errors.ComponentError` (or the Toxiproxy client's errors), a fault this
  set-up cannot inject (database faults on an external server) as
  :class:`~chaos.errors.NotSupportedError`.
* ``await revert(ctx)`` mends it. It is idempotent and safe whatever happened before: a
  fault never applied is left alone (nothing is called), a fault whose ``apply()`` failed
  half-way or was cancelled is mended as far as it may have bitten (a call of ``apply()``
  still in flight is waited for first, so it cannot land after the mending), a second
  call does nothing more. The runner calls it from ``finally`` and from signal handlers.
* ``await active(ctx)`` tells whether the fault is in place right now, so that the runner
  can assert after ``revert()`` that nothing remains.
* ``describe(ctx)`` is one line for reports; ``target_service`` names the app service the
  fault aims at (None: all of them, or the database itself).

**Legacy design.** In the legacy design every service's database traffic goes through the
one shared pool and its link, ``pg_shared``; the per-service links carry nothing. So with
``ctx.variant == "legacy"`` a link fault (:class:`Toxic`, :class:`LinkDown`) on
``pg_<service>`` is refused (:func:`checked_link`, :class:`~chaos.errors.ConfigError`): it
would do nothing, and moved to ``pg_shared`` it would cut every service, which proves
nothing about isolation. ``pg_shared`` itself may be faulted: every service is its target.
Links to the provider fakes are the same in both designs.

:func:`residue` is the runner's "nothing left behind" check: every toxic, disabled proxy,
broken service, misbehaving fake or stopped database it finds, whoever left it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import uuid4

import aiohttp

from chaos import postgres
from chaos.errors import (
    AlreadyExists,
    ComponentError,
    ConfigError,
    HarnessError,
    NotSupportedError,
    ProxyNotFound,
    ToxicNotFound,
    ToxiproxyError,
)
from chaos.links import legacy_refusal
from chaos.postgres import LocalCluster, RestartMode
from chaos.state import StackState
from chaos.toxiproxy.client import STREAMS, TOXIC_ATTRIBUTES, TOXIC_TYPES, ToxiproxyClient
from topology.links import LINK_NAMES, SHARED_LINK, link_named
from topology.ports import LOOPBACK
from topology.services import Variant

__all__ = [
    "DB_TIMEOUT",
    "HTTP_TIMEOUT",
    "PROVIDER_MODES",
    "PROVIDER_SERVICE",
    "SERVICE_MODES",
    "SHARED_LINK",
    "DbCrash",
    "DbRestart",
    "DbStopped",
    "Fault",
    "FaultContext",
    "LinkDown",
    "ProviderFault",
    "Recycle",
    "ServiceFault",
    "Toxic",
    "checked_link",
    "residue",
]


#: seconds a database control (stop, start, restart) may take
DB_TIMEOUT = 30.0
#: seconds one call to the app's fault API or a fake's control API may take
HTTP_TIMEOUT = 10.0
#: the modes of the app's fault API that break a service (``none`` mends it)
SERVICE_MODES: frozenset[str] = frozenset({"raise", "hang", "slow", "leak"})
#: the misbehaviours each provider fake offers (``normal`` mends it)
PROVIDER_MODES: Mapping[str, frozenset[str]] = {
    "payments": frozenset({"error", "slow", "malformed"}),
    "prices": frozenset({"error", "slow", "malformed", "stale"}),
}
#: the app service that calls each provider
PROVIDER_SERVICE: Mapping[str, str] = {"payments": "deposits", "prices": "swap"}

_MAX_SLOW_MS = 600_000
_APP_FIX = "check that the app runs with the fault API enabled (fault_api) and the admin token"


class Fault(Protocol):
    """What the runner needs of a fault."""

    @property
    def target_service(self) -> str | None:
        """The app service the fault aims at; None for all of them or the database."""
        ...

    def describe(self, ctx: FaultContext | None = None) -> str:
        """One line for reports (with ``ctx``: as it acts on that stack)."""
        ...

    async def apply(self, ctx: FaultContext) -> None:
        """Inject the fault."""
        ...

    async def revert(self, ctx: FaultContext) -> None:
        """Mend it: idempotent, and safe after a failed or missing ``apply()``."""
        ...

    async def active(self, ctx: FaultContext) -> bool:
        """Whether the fault is in place right now."""
        ...


@dataclass
class FaultContext:
    """The stack the faults act on: its Toxiproxy links, database, app and provider fakes."""

    toxiproxy: ToxiproxyClient
    #: link name (``pg_p2p``, ``payments``…) -> the proxy's name on the Toxiproxy server
    proxies: Mapping[str, str]
    variant: Variant
    #: None: database faults are not supported (external server)
    cluster: LocalCluster | None
    #: the app's base URL; empty when the stack runs no app
    app_url: str
    admin_token: str
    http: aiohttp.ClientSession
    #: ``"payments"`` / ``"prices"`` -> base URL of the fake (its ``/_control`` API)
    fake_urls: Mapping[str, str]

    @classmethod
    def from_stack(
        cls, state: StackState, toxiproxy: ToxiproxyClient, http: aiohttp.ClientSession
    ) -> FaultContext:
        """The context of the stack ``harness up`` recorded in ``state``."""
        pg = state.postgres
        cluster = None
        if pg is not None and pg.kind == "local" and pg.data_dir and pg.bin_dir:
            cluster = LocalCluster(pg.bin_dir, pg.data_dir, pg.port)
        app = state.app
        return cls(
            toxiproxy=toxiproxy,
            # The stack names each proxy after its link.
            proxies={name: name for name in state.links},
            variant=app.variant if app is not None else "isolated",
            cluster=cluster,
            app_url=app.url.rstrip("/") if app is not None else "",
            admin_token=app.admin_token if app is not None else "",
            http=http,
            fake_urls={
                target: f"http://{LOOPBACK}:{port}" for target, port in state.fake_ports.items()
            },
        )

    def proxy_for(self, link: str) -> str:
        """The proxy carrying ``link`` on this stack's Toxiproxy server."""
        try:
            return self.proxies[link]
        except KeyError:
            known = ", ".join(sorted(self.proxies)) or "none"
            raise ConfigError(
                f"the stack has no proxy for link {link!r}", f"links of this stack: {known}"
            ) from None


def checked_link(link: str, variant: Variant) -> str:
    """``link``, if a fault may act on it in ``variant`` (see :func:`legacy_refusal`)."""
    refusal = legacy_refusal(link) if variant == "legacy" else None
    if refusal is not None:
        raise ConfigError(*refusal)
    return link


def _link_service(link: str) -> str | None:
    """The app service whose traffic ``link`` carries (None for the shared link)."""
    if link == SHARED_LINK:
        return None
    target = link_named(link).target
    if target == "postgres":
        return link.removeprefix("pg_")
    return PROVIDER_SERVICE[target]


def _check_link(link: str) -> None:
    if link not in LINK_NAMES:
        raise ConfigError(f"unknown link {link!r}", f"use one of {', '.join(sorted(LINK_NAMES))}")


@dataclass
class _InFlight:
    """Keeps ``apply()``'s work going when ``apply()`` is cancelled (Ctrl-C, a timeout):
    a call half-way through could still land after ``revert()`` and undo it. So the work
    runs shielded, and ``revert()`` first waits for it (each call has its own deadline)."""

    _work: asyncio.Future[None] | None = field(default=None, init=False, repr=False, compare=False)

    async def _shielded(self, work: Awaitable[None]) -> None:
        self._work = asyncio.ensure_future(work)
        await asyncio.shield(self._work)

    async def _settle(self) -> None:
        """Wait for the work of ``apply()``; its outcome was apply's to report."""
        work = self._work
        if work is None:
            return
        await asyncio.wait([work])
        if not work.cancelled():
            work.exception()  # retrieved: no "exception never retrieved" warning
        self._work = None


def _refused(exc: HarnessError) -> bool:
    """Whether a Toxiproxy call that raised ``exc`` certainly changed nothing: refused
    before sending, or answered 4xx (a 5xx or no answer leaves it open)."""
    return isinstance(exc, ConfigError) or (
        isinstance(exc, ToxiproxyError) and 400 <= exc.status < 500
    )


# -- Toxiproxy ---------------------------------------------------------------------------


@dataclass
class Toxic(_InFlight):
    """A Toxiproxy toxic on a link, under a name of its own; revert removes it.

    ``attributes`` are the toxic type's (``{"latency": 500}``); ``toxicity`` is the
    probability that a connection is affected, drawn per connection by the server (so a
    pool keeps its luck: pair it with :class:`Recycle`).
    """

    link: str
    toxic_type: str
    attributes: Mapping[str, Any]
    stream: str = "downstream"
    toxicity: float = 1.0
    #: the toxic's name on the server, unique to this object
    name: str = field(init=False)
    _proxy: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_link(self.link)
        if self.toxic_type not in TOXIC_TYPES:
            raise ConfigError(
                f"unknown toxic type {self.toxic_type!r}",
                f"use one of {', '.join(sorted(TOXIC_TYPES))}",
            )
        if self.stream not in STREAMS:
            raise ConfigError(
                f"invalid toxic stream {self.stream!r}",
                "use 'upstream' (client to server) or 'downstream' (server to client)",
            )
        if (
            isinstance(self.toxicity, bool)
            or not isinstance(self.toxicity, int | float)
            or not 0.0 <= self.toxicity <= 1.0
        ):
            raise ConfigError(
                f"invalid toxicity {self.toxicity!r}", "give a probability from 0.0 to 1.0"
            )
        known = TOXIC_ATTRIBUTES[self.toxic_type]
        for key, value in self.attributes.items():
            if key not in known:
                raise ConfigError(
                    f"unknown attribute {key!r} for toxic type {self.toxic_type!r}",
                    f"use {', '.join(sorted(known))}",
                )
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(
                    f"invalid value {value!r} of toxic attribute {key!r}",
                    "give a whole number, 0 or more",
                )
        self.name = f"chaos_{self.toxic_type}_{self.stream}_{uuid4().hex[:8]}"

    @property
    def target_service(self) -> str | None:
        return _link_service(self.link)

    def describe(self, ctx: FaultContext | None = None) -> str:
        attrs = ", ".join(f"{k}={v}" for k, v in sorted(self.attributes.items()))
        return (
            f"{self.toxic_type} toxic ({attrs or 'defaults'}; {self.stream}, "
            f"toxicity {self.toxicity:g}) on link {self.link}"
        )

    async def apply(self, ctx: FaultContext) -> None:
        proxy = ctx.proxy_for(checked_link(self.link, ctx.variant))
        self._proxy = proxy
        await self._shielded(self._add(ctx, proxy))

    async def _add(self, ctx: FaultContext, proxy: str) -> None:
        try:
            await ctx.toxiproxy.add_toxic(
                proxy,
                self.toxic_type,
                self.attributes,
                name=self.name,
                stream=self.stream,
                toxicity=float(self.toxicity),
            )
        except AlreadyExists:
            return  # the name is ours alone: an earlier attempt got through
        except (ToxiproxyError, ConfigError) as exc:
            if _refused(exc):
                self._proxy = None  # nothing was added
            raise

    async def revert(self, ctx: FaultContext) -> None:
        await self._settle()
        proxy = self._proxy
        if proxy is None:
            return
        with contextlib.suppress(ToxicNotFound, ProxyNotFound):
            await ctx.toxiproxy.remove_toxic(proxy, self.name)
        self._proxy = None

    async def active(self, ctx: FaultContext) -> bool:
        proxy = self._proxy or ctx.proxies.get(self.link)
        if proxy is None:
            return False
        try:
            toxics = await ctx.toxiproxy.toxics(proxy)
        except ProxyNotFound:
            return False
        return any(toxic.name == self.name for toxic in toxics)


@dataclass
class LinkDown(_InFlight):
    """A link cut: its proxy disabled (listener closed, open connections dropped).

    Two faults on one proxy are not counted: the first revert enables it again.
    """

    link: str
    _proxy: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_link(self.link)

    @property
    def target_service(self) -> str | None:
        return _link_service(self.link)

    def describe(self, ctx: FaultContext | None = None) -> str:
        return f"link {self.link} down"

    async def apply(self, ctx: FaultContext) -> None:
        proxy = ctx.proxy_for(checked_link(self.link, ctx.variant))
        self._proxy = proxy
        await self._shielded(self._disable(ctx, proxy))

    async def _disable(self, ctx: FaultContext, proxy: str) -> None:
        try:
            await ctx.toxiproxy.disable(proxy)
        except (ToxiproxyError, ConfigError) as exc:
            if _refused(exc):
                self._proxy = None
            raise

    async def revert(self, ctx: FaultContext) -> None:
        await self._settle()
        proxy = self._proxy
        if proxy is None:
            return
        with contextlib.suppress(ProxyNotFound):
            await ctx.toxiproxy.enable(proxy)
        self._proxy = None

    async def active(self, ctx: FaultContext) -> bool:
        proxy = self._proxy or ctx.proxies.get(self.link)
        if proxy is None:
            return False
        try:
            return not (await ctx.toxiproxy.get_proxy(proxy)).enabled
        except ProxyNotFound:
            return False


# -- the database ------------------------------------------------------------------------


@dataclass
class _ClusterFault(_InFlight):
    """Shared by the database faults: pg_ctl runs in a thread, which a cancelled ``apply()``
    could not stop anyway; ``revert()`` waits for it, then makes sure the cluster runs."""

    _touched: bool = field(default=False, init=False, repr=False, compare=False)

    @property
    def target_service(self) -> str | None:
        return None

    def _cluster(self, ctx: FaultContext, what: str) -> LocalCluster:
        if ctx.cluster is None:
            raise NotSupportedError(
                f"cannot {what}: the harness does not control this PostgreSQL server",
                "unset HARNESS_PG_DSN so that the harness runs a cluster of its own",
            )
        return ctx.cluster

    async def _in_thread(self, work: Callable[[], None]) -> None:
        self._touched = True
        await self._shielded(asyncio.to_thread(work))

    async def revert(self, ctx: FaultContext) -> None:
        await self._settle()
        if not self._touched or ctx.cluster is None:
            return
        await asyncio.to_thread(ctx.cluster.start, DB_TIMEOUT)
        self._touched = False

    async def active(self, ctx: FaultContext) -> bool:
        """True while the cluster is down."""
        return ctx.cluster is not None and ctx.cluster.postmaster() is None


def _check_mode(mode: str, what: str) -> None:
    if mode not in ("fast", "immediate"):
        raise ConfigError(f"invalid {what} mode {mode!r}", "use fast or immediate")


@dataclass
class DbRestart(_ClusterFault):
    """A restart of the cluster with pg_ctl: ``fast`` (clean shutdown) or ``immediate``
    (no checkpoint: crash recovery at start). Back up when ``apply()`` returns; active
    only while it is down."""

    mode: RestartMode = "fast"

    def __post_init__(self) -> None:
        _check_mode(self.mode, "restart")

    def describe(self, ctx: FaultContext | None = None) -> str:
        return f"PostgreSQL restart ({self.mode})"

    async def apply(self, ctx: FaultContext) -> None:
        cluster = self._cluster(ctx, "restart PostgreSQL")
        mode = self.mode
        await self._in_thread(lambda: cluster.restart(mode, DB_TIMEOUT))


@dataclass
class DbCrash(_ClusterFault):
    """A crash of the database host: SIGKILL of the postmaster and its backends, then a
    start (with crash recovery). Back up when ``apply()`` returns."""

    def describe(self, ctx: FaultContext | None = None) -> str:
        return "PostgreSQL crash (SIGKILL of the postmaster), then start"

    async def apply(self, ctx: FaultContext) -> None:
        cluster = self._cluster(ctx, "crash PostgreSQL")

        def crash_and_start() -> None:
            cluster.crash()
            cluster.start(DB_TIMEOUT)

        await self._in_thread(crash_and_start)


@dataclass
class DbStopped(_ClusterFault):
    """The database stopped (``fast``: clean; ``immediate``: abrupt) until ``revert()``
    starts it again and waits until it accepts connections."""

    mode: RestartMode = "fast"

    def __post_init__(self) -> None:
        _check_mode(self.mode, "stop")

    def describe(self, ctx: FaultContext | None = None) -> str:
        return f"PostgreSQL stopped ({self.mode})"

    async def apply(self, ctx: FaultContext) -> None:
        cluster = self._cluster(ctx, "stop PostgreSQL")
        mode = self.mode
        await self._in_thread(lambda: cluster.stop(mode, DB_TIMEOUT))


# -- the app and the provider fakes --------------------------------------------------------


class _Refused(ComponentError):
    """The call certainly changed nothing: it was never sent, or answered 4xx."""


def _error_message(text: str) -> str:
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()[:200]
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return text.strip()[:200]


async def _call(
    ctx: FaultContext,
    method: str,
    url: str,
    what: str,
    fix: str,
    *,
    body: Any = None,
    admin: bool = False,
) -> Any:
    """One call to the app's fault API (``admin``: with the token) or a fake's control API;
    its decoded JSON answer."""
    headers = {"Accept": "application/json"}
    if admin:
        headers["Authorization"] = f"Bearer {ctx.admin_token}"
    where = f"{method} {url}"
    try:
        async with ctx.http.request(
            method,
            url,
            json=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT),
        ) as response:
            status = response.status
            text = await response.text(errors="replace")
    except TimeoutError:
        raise ComponentError(
            f"cannot {what}: {where} got no answer within {HTTP_TIMEOUT:g} s", fix
        ) from None
    except aiohttp.ClientConnectorError as exc:
        raise _Refused(f"cannot {what}: {where} could not connect ({exc})", fix) from None
    except aiohttp.ClientError as exc:
        reason = str(exc) or type(exc).__name__
        raise ComponentError(f"cannot {what}: {where} failed ({reason})", fix) from None
    if status >= 400:
        problem = f"cannot {what}: {where} answered {status}: {_error_message(text)}"
        raise (_Refused if status < 500 else ComponentError)(problem, fix)
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        raise ComponentError(
            f"cannot {what}: {where} answered with something other than JSON: {text[:200]!r}",
            fix,
        ) from None


def _app_url(ctx: FaultContext, path: str) -> str:
    if not ctx.app_url:
        raise ComponentError("the stack runs no app", "start it with `harness up`")
    return ctx.app_url.rstrip("/") + path


async def _app_faults(ctx: FaultContext) -> dict[str, str]:
    """The fault mode of every service, as the app reports it."""
    url = _app_url(ctx, "/api/_faults")
    answer = await _call(ctx, "GET", url, "list the app's service faults", _APP_FIX, admin=True)
    faults = answer.get("faults") if isinstance(answer, dict) else None
    if not isinstance(faults, dict):
        raise ComponentError(f"unexpected answer to GET {url}: {answer!r}", _APP_FIX)
    return {
        str(service): str(fault.get("mode")) if isinstance(fault, dict) else "?"
        for service, fault in faults.items()
    }


def _check_service(service: str) -> None:
    if not isinstance(service, str) or not service.isidentifier():
        raise ConfigError(f"invalid service name {service!r}", "give a service such as p2p")


@dataclass
class ServiceFault(_InFlight):
    """One service broken through the app's fault API (``PUT /api/_faults/{service}``):
    ``raise`` (its calls fail at once), ``hang`` (they never finish), ``slow`` (they hold
    their connection ``slow_ms`` longer) or ``leak`` (its pool's connections are held).
    Revert sets the mode ``none``."""

    service: str
    mode: str
    slow_ms: int = 0
    _touched: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_service(self.service)
        if self.mode not in SERVICE_MODES:
            raise ConfigError(
                f"invalid service fault mode {self.mode!r}",
                f"use one of {', '.join(sorted(SERVICE_MODES))}",
            )
        slow = self.slow_ms
        if isinstance(slow, bool) or not isinstance(slow, int) or not 0 <= slow <= _MAX_SLOW_MS:
            raise ConfigError(
                f"invalid slow_ms {slow!r}", f"give milliseconds, 0 to {_MAX_SLOW_MS}"
            )
        if self.mode == "slow" and slow == 0:
            raise ConfigError("a slow service fault needs slow_ms", "give slow_ms above 0")

    @property
    def target_service(self) -> str | None:
        return self.service

    def describe(self, ctx: FaultContext | None = None) -> str:
        extra = f" (+{self.slow_ms} ms per call)" if self.mode == "slow" else ""
        return f"service {self.service} broken: {self.mode}{extra}"

    async def _set(self, ctx: FaultContext, mode: str) -> None:
        body = {"mode": mode, "slow_ms": self.slow_ms if mode == "slow" else 0}
        url = _app_url(ctx, f"/api/_faults/{self.service}")
        what = f"set {self.service}'s fault to {mode}"
        await _call(ctx, "PUT", url, what, _APP_FIX, body=body, admin=True)

    async def apply(self, ctx: FaultContext) -> None:
        self._touched = True
        await self._shielded(self._break(ctx))

    async def _break(self, ctx: FaultContext) -> None:
        try:
            await self._set(ctx, self.mode)
        except _Refused:
            self._touched = False
            raise

    async def revert(self, ctx: FaultContext) -> None:
        await self._settle()
        if not self._touched:
            return
        await self._set(ctx, "none")
        self._touched = False

    async def active(self, ctx: FaultContext) -> bool:
        return (await _app_faults(ctx)).get(self.service) == self.mode


@dataclass
class Recycle:
    """Not a fault but its helper: the app closes the service's idle database connections,
    so that a link fault decided per connection (toxicity) bites at once. Nothing to revert."""

    service: str

    def __post_init__(self) -> None:
        _check_service(self.service)

    @property
    def target_service(self) -> str | None:
        return self.service

    def describe(self, ctx: FaultContext | None = None) -> str:
        return f"recycle {self.service}'s idle database connections"

    async def apply(self, ctx: FaultContext) -> None:
        url = _app_url(ctx, f"/api/_faults/{self.service}/recycle")
        what = f"recycle {self.service}'s connections"
        await _call(ctx, "POST", url, what, _APP_FIX, admin=True)

    async def revert(self, ctx: FaultContext) -> None:
        return None

    async def active(self, ctx: FaultContext) -> bool:
        return False


def _fake_url(ctx: FaultContext, target: str) -> str:
    try:
        return ctx.fake_urls[target].rstrip("/")
    except KeyError:
        raise ComponentError(
            f"the stack runs no {target} fake", "start it with `harness up`"
        ) from None


def _fake_fix(target: str) -> str:
    return f"check that the {target} fake runs (`harness status`)"


async def _fake_mode(ctx: FaultContext, target: str) -> str:
    url = f"{_fake_url(ctx, target)}/_control/mode"
    answer = await _call(ctx, "GET", url, f"read the {target} fake's mode", _fake_fix(target))
    if not isinstance(answer, dict) or not isinstance(answer.get("mode"), str):
        raise ComponentError(f"unexpected answer to GET {url}: {answer!r}", _fake_fix(target))
    return str(answer["mode"])


def _whole(value: int, name: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"invalid {name} {value!r}", f"give a whole number, {low} to {high}")


@dataclass
class ProviderFault(_InFlight):
    """A provider fake misbehaving (``POST /_control/mode``): ``error`` (answers ``status``),
    ``slow`` (waits ``delay_ms``), ``malformed`` (cut JSON) or, for ``prices`` only,
    ``stale`` (prices ``stale_seconds`` old). Revert sets the mode ``normal``."""

    target: str
    mode: str
    status: int = 503
    delay_ms: int = 1000
    stale_seconds: int = 3600
    _touched: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.target not in PROVIDER_MODES:
            raise ConfigError(
                f"unknown provider {self.target!r}", f"use one of {', '.join(PROVIDER_MODES)}"
            )
        modes = PROVIDER_MODES[self.target]
        if self.mode not in modes:
            raise ConfigError(
                f"invalid mode {self.mode!r} for the {self.target} fake",
                f"use one of {', '.join(sorted(modes))}",
            )
        _whole(self.status, "status", 400, 599)
        _whole(self.delay_ms, "delay_ms", 0, _MAX_SLOW_MS)
        _whole(self.stale_seconds, "stale_seconds", 1, 10**9)

    @property
    def target_service(self) -> str | None:
        return PROVIDER_SERVICE[self.target]

    def describe(self, ctx: FaultContext | None = None) -> str:
        detail = {
            "error": f" (HTTP {self.status})",
            "slow": f" ({self.delay_ms} ms)",
            "stale": f" ({self.stale_seconds} s old)",
        }.get(self.mode, "")
        return f"{self.target} provider {self.mode}{detail}"

    async def _set(self, ctx: FaultContext, body: dict[str, Any]) -> None:
        url = f"{_fake_url(ctx, self.target)}/_control/mode"
        what = f"set the {self.target} fake's mode to {body['mode']}"
        await _call(ctx, "POST", url, what, _fake_fix(self.target), body=body)

    async def apply(self, ctx: FaultContext) -> None:
        body: dict[str, Any] = {
            "mode": self.mode,
            "status": self.status,
            "delay_ms": self.delay_ms,
        }
        if self.target == "prices":
            body["stale_seconds"] = self.stale_seconds
        self._touched = True
        await self._shielded(self._break(ctx, body))

    async def _break(self, ctx: FaultContext, body: dict[str, Any]) -> None:
        try:
            await self._set(ctx, body)
        except _Refused:
            self._touched = False
            raise

    async def revert(self, ctx: FaultContext) -> None:
        await self._settle()
        if not self._touched:
            return
        await self._set(ctx, {"mode": "normal"})
        self._touched = False

    async def active(self, ctx: FaultContext) -> bool:
        return await _fake_mode(ctx, self.target) == self.mode


# -- what is left behind -------------------------------------------------------------------


async def _proxy_residue(ctx: FaultContext) -> list[str]:
    if not ctx.proxies:
        return []
    try:
        found = await ctx.toxiproxy.proxies()
    except HarnessError as exc:
        return [f"Toxiproxy: cannot check the links ({exc.problem})"]
    left = []
    seen: set[str] = set()
    for link, name in sorted(ctx.proxies.items()):
        if name in seen:
            continue
        seen.add(name)
        proxy = found.get(name)
        if proxy is None:
            left.append(f"link {link}: proxy {name} does not exist")
            continue
        if not proxy.enabled:
            left.append(f"link {link}: proxy {name} is disabled")
        left.extend(
            f"link {link}: toxic {toxic.name} ({toxic.type}, {toxic.stream}) on proxy {name}"
            for toxic in proxy.toxics
        )
    return left


async def _app_residue(ctx: FaultContext) -> list[str]:
    if not ctx.app_url:
        return []
    try:
        faults = await _app_faults(ctx)
    except HarnessError as exc:
        return [f"app: cannot check the service faults ({exc.problem})"]
    return [
        f"service {service}: fault {mode} set in the app"
        for service, mode in sorted(faults.items())
        if mode != "none"
    ]


async def _fake_residue(ctx: FaultContext, target: str) -> list[str]:
    try:
        mode = await _fake_mode(ctx, target)
    except HarnessError as exc:
        return [f"{target} fake: cannot check its mode ({exc.problem})"]
    return [] if mode == "normal" else [f"{target} fake: mode {mode}"]


async def _cluster_residue(ctx: FaultContext) -> list[str]:
    cluster = ctx.cluster
    if cluster is None:
        return []
    if cluster.postmaster() is None:
        return ["PostgreSQL: the cluster is not running"]
    try:
        await asyncio.to_thread(postgres.ping, cluster.dsn(), 2.0)
    except ComponentError as exc:
        return [f"PostgreSQL: running but not answering ({exc.problem})"]
    return []


async def residue(ctx: FaultContext) -> list[str]:
    """Everything faulty left on the stack, one line each; empty when all is clean.

    Looks at every proxy of ``ctx.proxies`` (toxics, disabled), the app's service faults
    (``GET /api/_faults``), each fake's mode and the cluster (running and answering). A
    component that cannot be checked is listed too: a clean bill needs an answer.
    """
    parts = await asyncio.gather(
        _proxy_residue(ctx),
        _app_residue(ctx),
        *(_fake_residue(ctx, target) for target in sorted(ctx.fake_urls)),
        _cluster_residue(ctx),
    )
    return [line for part in parts for line in part]
