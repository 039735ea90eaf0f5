"""The error boundary around every use case of a service.

In the isolated design a use case runs under the service's time limit, and a driver error,
a timeout or an exhausted pool becomes :class:`DependencyUnavailable` naming the service:
one service's trouble is answered as that service's 503 and goes no further. The legacy
design has no boundary: errors escape as they are (root cause 4 of the source document).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

import psycopg2

from reference_app.db import PoolTimeout
from reference_app.errors import AppError, DependencyUnavailable
from reference_app.faults import FaultSwitches

P = ParamSpec("P")
T = TypeVar("T")

#: when the enclosing use case's time runs out (a service calling another, e.g. swap ->
#: wallet): the inner one gets a little less, so its own 503 names the service that was slow
_deadline: ContextVar[float | None] = ContextVar("boundary_deadline", default=None)
NESTED_MARGIN = 0.1


class Boundary:
    """Runs a service's use cases: faults first, then the time limit and error mapping."""

    def __init__(
        self, service: str, faults: FaultSwitches, *, timeout: float | None, isolate: bool
    ) -> None:
        self.service = service
        self.faults = faults
        self.timeout = timeout
        self.isolate = isolate

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        if not self.isolate:
            # Root cause 1: one global service object serves every feature, so when one
            # feature breaks it, every feature fails, and unstructured (root cause 4).
            broken = [s for s, f in self.faults.all().items() if f.mode == "raise"]
            if broken:
                raise RuntimeError(f"the shared service object failed ({broken[0]})")
            return await fn(*args, **kwargs)
        self.faults.before_call(self.service)
        now = asyncio.get_running_loop().time()
        limit = self.timeout
        outer = _deadline.get()
        if outer is not None and limit is not None:
            limit = max(0.01, min(limit, outer - now - NESTED_MARGIN))
        token = _deadline.set(now + limit if limit is not None else None)
        scope = asyncio.timeout(limit)
        try:
            async with scope:
                return await fn(*args, **kwargs)
        except AppError:
            raise
        except PoolTimeout as exc:
            raise DependencyUnavailable(
                f"{self.service}: database busy, {exc}", service=self.service, code="pool_timeout"
            ) from exc
        except TimeoutError as exc:
            # Either the service's own time limit, or a driver operation that timed out
            # inside it (aiopg's per-operation timeout, a network stall): say which.
            message = (
                f"{self.service}: no answer within {limit:g} s"
                if scope.expired()
                else f"{self.service}: its database did not answer in time"
            )
            raise DependencyUnavailable(message, service=self.service, code="timeout") from exc
        except psycopg2.extensions.QueryCanceledError as exc:
            raise DependencyUnavailable(
                f"{self.service}: a statement ran past its time limit ({_first_line(exc)})",
                service=self.service,
                code="statement_timeout",
            ) from exc
        except (psycopg2.OperationalError, psycopg2.InterfaceError, OSError) as exc:
            raise DependencyUnavailable(
                f"{self.service}: database unavailable ({_first_line(exc)})",
                service=self.service,
                code="database_unavailable",
            ) from exc
        finally:
            _deadline.reset(token)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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
