"""Calls to the control planes faults act through: the app's fault API and the fakes'
``/_control`` API, with the harness's errors (a refusal told apart from a failure)."""

from __future__ import annotations

import json
from abc import abstractmethod
from typing import Any

import aiohttp
from pydantic import PrivateAttr

from isolation_harness.chaos.errors import ComponentError
from isolation_harness.chaos.faults.base import Fault
from isolation_harness.chaos.faults.context import FaultContext

#: seconds one call to the app's fault API or a fake's control API may take
HTTP_TIMEOUT = 10.0
APP_FIX = "check that the app runs with the fault API enabled (fault_api) and the admin token"


class Refused(ComponentError):
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


async def call(
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
        raise Refused(f"cannot {what}: {where} could not connect ({exc})", fix) from None
    except aiohttp.ClientError as exc:
        reason = str(exc) or type(exc).__name__
        raise ComponentError(f"cannot {what}: {where} failed ({reason})", fix) from None
    if status >= 400:
        problem = f"cannot {what}: {where} answered {status}: {_error_message(text)}"
        raise (Refused if status < 500 else ComponentError)(problem, fix)
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        raise ComponentError(
            f"cannot {what}: {where} answered with something other than JSON: {text[:200]!r}",
            fix,
        ) from None


def app_url(ctx: FaultContext, path: str) -> str:
    if not ctx.app_url:
        raise ComponentError("the stack runs no app", "start it with `harness up`")
    return ctx.app_url.rstrip("/") + path


async def app_faults(ctx: FaultContext) -> dict[str, str]:
    """The fault mode of every service, as the app reports it."""
    url = app_url(ctx, "/api/_faults")
    answer = await call(ctx, "GET", url, "list the app's service faults", APP_FIX, admin=True)
    faults = answer.get("faults") if isinstance(answer, dict) else None
    if not isinstance(faults, dict):
        raise ComponentError(f"unexpected answer to GET {url}: {answer!r}", APP_FIX)
    return {
        str(service): str(fault.get("mode")) if isinstance(fault, dict) else "?"
        for service, fault in faults.items()
    }


def fake_url(ctx: FaultContext, target: str) -> str:
    try:
        return ctx.fake_urls[target].rstrip("/")
    except KeyError:
        raise ComponentError(
            f"the stack runs no {target} fake", "start it with `harness up`"
        ) from None


def fake_fix(target: str) -> str:
    return f"check that the {target} fake runs (`harness status`)"


async def fake_mode(ctx: FaultContext, target: str) -> str:
    url = f"{fake_url(ctx, target)}/_control/mode"
    answer = await call(ctx, "GET", url, f"read the {target} fake's mode", fake_fix(target))
    if not isinstance(answer, dict) or not isinstance(answer.get("mode"), str):
        raise ComponentError(f"unexpected answer to GET {url}: {answer!r}", fake_fix(target))
    return str(answer["mode"])


class ControlledFault(Fault):
    """A fault set through a control API (the app's fault API, a fake's ``/_control``):
    ``_set_broken`` and ``_set_mended`` are one call each. A call refused (never sent, or
    answered 4xx) changed nothing, so there is nothing to mend."""

    _touched: bool = PrivateAttr(default=False)

    @abstractmethod
    async def _set_broken(self, ctx: FaultContext) -> None: ...

    @abstractmethod
    async def _set_mended(self, ctx: FaultContext) -> None: ...

    async def apply(self, ctx: FaultContext) -> None:
        self._touched = True
        await self._shielded(self._break_once(ctx))

    async def _break_once(self, ctx: FaultContext) -> None:
        try:
            await self._set_broken(ctx)
        except Refused:
            self._touched = False
            raise

    async def revert(self, ctx: FaultContext) -> None:
        await self._settle()
        if not self._touched:
            return
        await self._set_mended(ctx)
        self._touched = False
