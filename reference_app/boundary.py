"""The error boundary around every use case of a service.

In the isolated design a use case runs under the service's time limit, and a driver error,
a timeout or an exhausted pool becomes :class:`DependencyUnavailable` naming the service:
one service's trouble is answered as that service's 503 and goes no further. The answer
comes when the limit runs out, not when the use case has finished cleaning up: a use case
past its limit is cancelled and left to roll back on its own (through a slow link that can
take longer than the limit itself), so that a client never waits past the service's limit.
A service calling another (P2P locking a seller's funds in the wallet) gives the inner call
what is left of its own time; when that runs out, the 503 names whichever of the two used
most of it: the caller, if more of its time went before the call than was left for it.
Every driver error is the service's 503: its database or network failing
(``database_unavailable``), and a statement the database refused (``database_error``: a
data, integrity or internal error; the edge refuses the inputs known to cause one); a
decimal operation that failed is the service's ``calculation_failed``.

The legacy design has no boundary (root cause 4 of the source document): ``isolate=False``
runs the use case as it is, with no time limit and no error mapping, so errors escape as
they are (see ``reference_app/legacy.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

import psycopg2

from isolation_harness.reference_app.db import PoolTimeout
from isolation_harness.reference_app.errors import (
    AppError,
    DependencyUnavailable,
    ServiceBroken,
    ServiceFailed,
)
from isolation_harness.reference_app.faults import InjectedFailure, use_case

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

#: when the enclosing use case started and when its time runs out (a service calling
#: another, e.g. swap -> wallet): the inner one gets a little less, so that a 503 comes from
#: the inner boundary before the outer one's, and names the service that took the time
_deadline: ContextVar[tuple[float, float] | None] = ContextVar("boundary_deadline", default=None)
NESTED_MARGIN = 0.1
#: when the request's time runs out: the use cases one request runs one after the other
#: (read the offer, then open the trade) share the service's limit, not one limit each
_request_deadline: ContextVar[float | None] = ContextVar("request_deadline", default=None)


@contextlib.contextmanager
def request_deadline(seconds: float) -> Iterator[None]:
    """Within the block, every use case ends by ``seconds`` from now, all together."""
    token = _request_deadline.set(asyncio.get_running_loop().time() + seconds)
    try:
        yield
    finally:
        _request_deadline.reset(token)


class Boundary:
    """Runs a service's use cases under its time limit, and maps their errors."""

    def __init__(self, service: str, *, timeout: float | None, isolate: bool) -> None:
        self.service = service
        self.timeout = timeout
        self.isolate = isolate

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        with use_case():
            if not self.isolate:
                return await fn(*args, **kwargs)
            return await self._bounded(fn, *args, **kwargs)

    async def _bounded(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        now = asyncio.get_running_loop().time()
        limit = self.timeout
        outer = _deadline.get()
        if outer is not None and limit is not None:
            limit = max(0.01, min(limit, outer[1] - now - NESTED_MARGIN))
        request_end = _request_deadline.get()
        if request_end is not None and limit is not None:
            limit = max(0.01, min(limit, request_end - now))
        token = _deadline.set((now, now + limit) if limit is not None else None)
        try:
            if limit is None:
                return await fn(*args, **kwargs)
            return await _within(limit, self.service, fn(*args, **kwargs))
        except AppError:
            raise
        except _Expired:
            if outer is not None and limit is not None and now - outer[0] > limit:
                # The caller spent more of its time before this call than was left for it
                # (its own database was slow): the caller's time ran out, its 503 names it.
                raise
            raise DependencyUnavailable(
                f"{self.service}: no answer within {limit:.2g} s", service=self.service,
                code="timeout",
            ) from None  # fmt: skip
        except InjectedFailure as exc:
            raise ServiceBroken(str(exc), service=self.service) from exc
        except PoolTimeout as exc:
            raise DependencyUnavailable(
                f"{self.service}: database busy, {exc}", service=self.service, code="pool_timeout"
            ) from exc
        except TimeoutError as exc:
            # A driver operation that timed out inside the limit (aiopg's per-operation
            # timeout, a network stall).
            raise DependencyUnavailable(
                f"{self.service}: its database did not answer in time", service=self.service,
                code="timeout",
            ) from exc  # fmt: skip
        except psycopg2.extensions.QueryCanceledError as exc:
            raise DependencyUnavailable(
                f"{self.service}: a statement ran past its time limit",
                service=self.service,
                code="statement_timeout",
            ) from exc
        except (psycopg2.OperationalError, psycopg2.InterfaceError, OSError) as exc:
            raise DependencyUnavailable(
                f"{self.service}: database unavailable ({failure_kind(exc)})",
                service=self.service,
                code="database_unavailable",
            ) from exc
        except psycopg2.Error as exc:
            raise DependencyUnavailable(
                f"{self.service}: the database refused a statement ({refusal_kind(exc)})",
                service=self.service,
                code="database_error",
            ) from exc
        except decimal.DecimalException as exc:
            raise ServiceFailed(
                f"{self.service}: a calculation failed ({type(exc).__name__})",
                service=self.service,
                code="calculation_failed",
            ) from exc
        finally:
            _deadline.reset(token)


class _Expired(TimeoutError):
    """The service's own time limit ran out (not a timeout inside the use case)."""


async def _within(limit: float, service: str, use_case: Awaitable[T]) -> T:
    """The use case's result, or :class:`_Expired` as soon as ``limit`` seconds passed.

    Past the limit the use case is cancelled but not waited for: its clean-up (a rollback
    through a slow link) goes on in the background, and the answer goes out now.
    """
    work = asyncio.ensure_future(use_case)  # runs in a copy of this context
    try:
        done, _ = await asyncio.wait({work}, timeout=limit)
    except asyncio.CancelledError:  # the request itself was cancelled
        work.cancel()
        raise
    if work not in done:
        work.cancel()
        work.add_done_callback(functools.partial(_forget, service))
        raise _Expired
    return work.result()


def _forget(service: str, work: asyncio.Future[Any]) -> None:
    """The end of a use case left past its limit: already answered, so only noted."""
    if work.cancelled():
        return
    error = work.exception()
    if error is not None:
        log.info("%s: a use case past its time limit ended with %r", service, error)


#: what a database failure was, by the driver's words, in words that name no host, port,
#: role or database (the driver's own text goes to the log, with the request's id)
FAILURE_WORDS = (
    ("connection refused", "connection refused"),
    ("timeout expired", "connect timed out"),
    ("timed out", "connect timed out"),
    ("authentication failed", "authentication failed"),
    ("too many connections", "too many connections"),
    ("remaining connection slots", "too many connections"),
    ("starting up", "database starting up"),
    ("shutting down", "database shutting down"),
    ("terminating connection", "connection closed by the server"),
    ("server closed the connection", "connection lost"),
    ("connection already closed", "connection closed"),
    ("no connection to the server", "connection lost"),
    ("could not receive data", "connection lost"),
    ("could not send data", "connection lost"),
    ("does not exist", "database or role missing"),
)
#: every kind :func:`failure_kind` may say
FAILURE_KINDS = frozenset(
    {kind for _, kind in FAILURE_WORDS} | {"connection closed", "network error", "connection error"}
)


def failure_kind(exc: BaseException) -> str:
    """The kind of a database failure, for users: never the driver's text itself."""
    text = str(exc).lower()
    for words, kind in FAILURE_WORDS:
        if words in text:
            return kind
    if isinstance(exc, psycopg2.InterfaceError):
        return "connection closed"
    if isinstance(exc, OSError):
        return "network error"
    return "connection error"


#: what a statement the database refused was, by the driver's class (its text, which may
#: quote the values, goes to the log only)
REFUSAL_KINDS = (
    (psycopg2.DataError, "data error"),
    (psycopg2.IntegrityError, "integrity error"),
    (psycopg2.InternalError, "internal error"),
    (psycopg2.ProgrammingError, "statement error"),
    (psycopg2.NotSupportedError, "not supported"),
)


def refusal_kind(exc: psycopg2.Error) -> str:
    """The kind of a statement the database refused, for users."""
    for cls, kind in REFUSAL_KINDS:
        if isinstance(exc, cls):
            return kind
    return "database error"


class BoundedService:
    """Base of the services: every public coroutine method runs inside ``self.boundary``."""

    boundary: Boundary

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, member in list(vars(cls).items()):
            if name.startswith("_") or not inspect.iscoroutinefunction(member):
                continue
            setattr(cls, name, _bounded(member))


def _bounded(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def run(self: BoundedService, *args: Any, **kwargs: Any) -> Any:
        return await self.boundary.call(method, self, *args, **kwargs)

    return run
