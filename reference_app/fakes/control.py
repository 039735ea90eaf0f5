"""The control plane both fakes share: how a fake misbehaves on purpose, its errors, its
``/_control/mode`` and ``/_control/reset`` routes, and its command line.

The modes its ``/v1`` endpoints can be switched to:

Every fake has a control endpoint, ``POST /_control/mode``, taking
``{"mode", "status"?, "delay_ms"?}`` (see :func:`parse_behaviour`), and answers
``GET /_control/mode`` with :meth:`Behaviour.to_json`. The modes:

- ``normal``: answer as usual;
- ``error``: answer ``status`` (400..599, default 503) with the fake's own error body,
  doing nothing;
- ``slow``: wait ``delay_ms`` (default 1000), then handle the request (it takes effect even
  if the client gave up);
- ``malformed``: handle the request (it takes effect), then answer 200 with the first half
  of the real body, which is not valid JSON;
- ``stale``: offered only by a fake whose answers carry a time (the price fake), which
  applies it itself: the middleware leaves it alone.

:func:`misbehaviour_middleware` applies the mode to a fake's ``/v1/`` paths; the control
API is never affected. Each fake keeps its :class:`Behaviour` in its own state and answers
its errors, the injected one included, in its own shape.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

DEFAULT_STATUS = 503
DEFAULT_DELAY_MS = 1000
MAX_DELAY_MS = 600_000
#: the message of the error answered in the ``error`` mode
FAULT_MESSAGE = "error injected by the fake's mode"
#: the paths a mode applies to
API_PREFIX = "/v1/"

E = TypeVar("E", bound=Exception)


class Mode(StrEnum):
    """How a fake's ``/v1`` endpoints behave."""

    NORMAL = "normal"
    ERROR = "error"
    SLOW = "slow"
    STALE = "stale"
    MALFORMED = "malformed"


#: the modes every fake offers; ``stale`` is the price fake's own
COMMON_MODES: tuple[Mode, ...] = (Mode.NORMAL, Mode.ERROR, Mode.SLOW, Mode.MALFORMED)


@dataclass(frozen=True)
class Behaviour:
    """The current mode and its settings (a setting is kept even when its mode is off)."""

    mode: Mode = Mode.NORMAL
    status: int = DEFAULT_STATUS
    delay_ms: int = DEFAULT_DELAY_MS

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode.value, "status": self.status, "delay_ms": self.delay_ms}


@dataclass
class Tally:
    """How many ``/v1`` answers a fake gave while misbehaving (any mode but ``normal``):
    the evidence that a provider fault really bit, read from ``GET /_control/mode`` as
    ``misbehaved``."""

    count: int = 0


class InvalidBehaviour(ValueError):
    """A ``POST /_control/mode`` body that says no valid behaviour: the fake answers 400."""


def parse_behaviour(body: Mapping[str, Any], modes: Sequence[Mode] = COMMON_MODES) -> Behaviour:
    """The behaviour a control body asks for, among ``modes``; :exc:`InvalidBehaviour` if none."""
    mode = body.get("mode")
    if not isinstance(mode, str) or mode not in {m.value for m in modes}:
        raise InvalidBehaviour(f'"mode" must be one of {", ".join(modes)}, not {mode!r}')
    return Behaviour(
        mode=Mode(mode),
        status=whole_number(body, "status", DEFAULT_STATUS, 400, 599, "an HTTP error status"),
        delay_ms=whole_number(
            body, "delay_ms", DEFAULT_DELAY_MS, 0, MAX_DELAY_MS, "a whole number of milliseconds"
        ),
    )


def whole_number(
    body: Mapping[str, Any], name: str, default: int, low: int, high: int, what: str
) -> int:
    """``body[name]`` (``default`` if absent): an integer from ``low`` to ``high``."""
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidBehaviour(f'"{name}" must be {what}, {low} to {high}')
    return value


def misbehaviour_middleware(
    behaviour_of: Callable[[web.Request], Behaviour],
    error_type: type[E],
    error_response: Callable[[E], web.Response],
    fault: Callable[[int], E],
    tally_of: Callable[[web.Request], Tally] | None = None,
) -> Middleware:
    """A fake's middleware: its errors answered in its shape, its ``/v1/`` paths misbehaving.

    A handler's ``error_type`` becomes ``error_response(error)``, on every path. On the
    ``/v1/`` paths, ``behaviour_of(request)`` then applies; ``fault(status)`` is the error
    answered in the ``error`` mode. The ``malformed`` mode breaks error answers too. Every
    ``/v1/`` answer given in another mode than ``normal`` is counted in ``tally_of(request)``.
    """

    async def answer(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except error_type as exc:
            return error_response(exc)

    @web.middleware
    async def misbehave(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(API_PREFIX):
            return await answer(request, handler)
        behaviour = behaviour_of(request)
        if behaviour.mode is not Mode.NORMAL and tally_of is not None:
            tally_of(request).count += 1
        if behaviour.mode is Mode.ERROR:
            return error_response(fault(behaviour.status))
        if behaviour.mode is Mode.SLOW:
            await asyncio.sleep(behaviour.delay_ms / 1000)
        response = await answer(request, handler)
        if behaviour.mode is Mode.MALFORMED and isinstance(response, web.Response):
            return _truncated(response)
        return response

    return misbehave


def _truncated(response: web.Response) -> web.Response:
    """A 200 with the first half of ``response``'s body: not valid JSON."""
    body = response.body if isinstance(response.body, bytes) else b"{}"
    return web.Response(status=200, body=body[: len(body) // 2], content_type="application/json")


class FakeError(Exception):
    """An error a fake answers, in its own dialect (:class:`Dialect`)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


B = TypeVar("B", bound=Behaviour)


class MisbehavingBook(Protocol[B]):
    """A fake's state as the control plane sees it."""

    behaviour: B
    misbehaved: Tally

    def reset(self) -> None: ...


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


@dataclass(frozen=True)
class Dialect:
    """How one fake speaks: its error codes and body, how it writes and reads JSON."""

    #: the code of a 400 for a malformed request
    invalid_code: str
    #: the code of the error answered in the ``error`` mode
    fault_code: str
    error_body: Callable[[FakeError], Mapping[str, Any]]
    dumps: Callable[[Mapping[str, Any]], bytes] = field(
        default=lambda data: json.dumps(data).encode()
    )
    #: how JSON numbers with a fraction are read (the payment fake reads them exact)
    parse_float: Callable[[str], Any] = float

    def respond(self, data: Mapping[str, Any], status: int = 200) -> web.Response:
        return web.Response(status=status, body=self.dumps(data), content_type="application/json")

    def error(self, error: FakeError) -> web.Response:
        return self.respond(self.error_body(error), status=error.status)

    def invalid(self, message: str) -> FakeError:
        return FakeError(400, self.invalid_code, message)

    def fault(self, status: int) -> FakeError:
        return FakeError(status, self.fault_code, FAULT_MESSAGE)

    async def json_object(self, request: web.Request) -> dict[str, Any]:
        """The request's body, which must be a JSON object (NaN and Infinity refused)."""
        try:
            body = json.loads(
                await request.read(),
                parse_float=self.parse_float,
                parse_constant=_refuse_constant,
            )
        except (ValueError, RecursionError):
            raise self.invalid("the body must be a JSON object") from None
        if not isinstance(body, dict):
            raise self.invalid("the body must be a JSON object")
        return body


def fake_app(
    book_key: web.AppKey[Any],
    book: MisbehavingBook[B],
    dialect: Dialect,
    parse: Callable[[Mapping[str, Any]], B],
) -> web.Application:
    """A fake's application with its control plane: its errors answered in its dialect, its
    ``/v1/`` paths misbehaving as told, and ``GET|POST /_control/mode`` (``parse`` reads a
    behaviour) and ``POST /_control/reset``. The fake adds its own routes."""

    def book_of(request: web.Request) -> MisbehavingBook[B]:
        return request.app[book_key]

    async def get_mode(request: web.Request) -> web.Response:
        current = book_of(request)
        return dialect.respond(
            {**current.behaviour.to_json(), "misbehaved": current.misbehaved.count}
        )

    async def set_mode(request: web.Request) -> web.Response:
        current = book_of(request)
        body = await dialect.json_object(request)
        try:
            current.behaviour = parse(body)
        except InvalidBehaviour as exc:
            raise dialect.invalid(str(exc)) from None
        return dialect.respond(current.behaviour.to_json())

    async def reset(request: web.Request) -> web.Response:
        book_of(request).reset()
        return dialect.respond({"reset": True})

    middleware = misbehaviour_middleware(
        lambda r: book_of(r).behaviour,
        FakeError,
        dialect.error,
        dialect.fault,
        lambda r: book_of(r).misbehaved,
    )
    app = web.Application(middlewares=[middleware])
    app[book_key] = book
    app.router.add_get("/_control/mode", get_mode)
    app.router.add_post("/_control/mode", set_mode)
    app.router.add_post("/_control/reset", reset)
    return app


def serve(
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    port: int,
    build: Callable[[argparse.Namespace], web.Application],
    options: Callable[[argparse.ArgumentParser], None] = lambda parser: None,
) -> None:
    """A fake's command line: ``--host`` and ``--port``, its own ``options``, then serve the
    application ``build(args)`` until interrupted."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    options(parser)
    args = parser.parse_args(argv)
    web.run_app(build(args), host=args.host, port=args.port)
