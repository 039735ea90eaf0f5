"""The "nothing left behind" check: every toxic, disabled proxy, broken service,
misbehaving fake or stopped database found on the stack, whoever left it."""

from __future__ import annotations

import asyncio

from isolation_harness.chaos.errors import ComponentError, HarnessError
from isolation_harness.chaos.faults.context import FaultContext
from isolation_harness.chaos.faults.control import app_faults, fake_mode
from isolation_harness.chaos.stack import postgres


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
        faults = await app_faults(ctx)
    except HarnessError as exc:
        return [f"app: cannot check the service faults ({exc.problem})"]
    return [
        f"service {service}: fault {mode} set in the app"
        for service, mode in sorted(faults.items())
        if mode != "none"
    ]


async def _fake_residue(ctx: FaultContext, target: str) -> list[str]:
    try:
        mode = await fake_mode(ctx, target)
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
