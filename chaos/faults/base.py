"""What every fault kind is: one pydantic model that is at once its scenario entry (fields,
bounds, cross-field checks) and the fault itself (``apply``, ``revert``, ``active``), with its
target and the evidence its effect is judged on.

Defining a subclass with a ``type: Literal["<kind>"]`` field registers the kind in
:data:`KINDS`: scenario files can name it at once (``type: <kind>``), and the runner and the
judge need nothing more of it. The contract every kind keeps:

* ``await apply(ctx)`` breaks the thing, once per run. Errors come out as the harness's own
  (:mod:`chaos.errors`): a call the component refused or could not receive as
  :class:`~chaos.errors.ComponentError` (or the Toxiproxy client's errors), a fault this
  set-up cannot inject (database faults on an external server) as
  :class:`~chaos.errors.NotSupportedError`.
* ``await revert(ctx)`` mends it. It is idempotent and safe whatever happened before: a fault
  never applied is left alone (nothing is called), a fault whose ``apply()`` failed half-way
  or was cancelled is mended as far as it may have bitten (a call of ``apply()`` still in
  flight is waited for first, so it cannot land after the mending), a second call does
  nothing more. The runner calls it from ``finally`` and from signal handlers.
* ``await active(ctx)`` tells whether the fault is in place right now, so that the runner can
  assert after ``revert()`` that nothing remains.
* ``describe(ctx)`` is one line for reports; ``target_service`` names the app service the
  fault aims at (None: all of them, or the database itself); ``signature`` says what its
  effect is judged on; ``observe(ctx, when)`` collects that evidence around it.

What a fault did to the stack (the proxy it touched, the call in flight) is kept in private
attributes, never in its fields: :meth:`Fault.fresh` gives a copy that has done nothing.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Self, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PrivateAttr,
    SerializeAsAny,
    TypeAdapter,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

from isolation_harness.chaos.errors import FieldProblem
from isolation_harness.topology.links import LINK_NAMES
from isolation_harness.topology.services import SERVICES

if TYPE_CHECKING:
    from isolation_harness.chaos.faults.context import FaultContext

#: fault ``type`` -> its kind, in the order the kinds were defined
KINDS: dict[str, type[Fault]] = {}

#: the app service a provider's fault hurts: payments back deposits, prices back swap
PROVIDER_SERVICE: Mapping[str, str] = {"payments": "deposits", "prices": "swap"}

#: when :meth:`Fault.observe` is asked: before ``apply()``, after it, after ``revert()``
Moment = Literal["before", "after", "reverted"]


@dataclass(frozen=True)
class Signature:
    """What a fault's effect is judged on (:mod:`chaos.judge.effect`) and how fast its
    target's failures must come back (:mod:`chaos.judge.isolation`)."""

    #: ``target``: its target's requests failed or slowed; ``database``: the postmaster went
    #: down and the pools noticed; ``provider``: the fake counted its misbehaving answers
    evidence: Literal["target", "database", "provider"]
    #: it can make the target's requests slower (False: it can only make them fail, and
    #: slowness in its phase is the machine's)
    slows: bool = True
    #: it holds the target pool's connections (a leak): the pool's gauges show it too
    holds: bool = False
    #: the target's failures come back within the pool's acquire timeout, not only within
    #: the service's time limit
    fails_fast: bool = False


def _known_service(name: str) -> str:
    if name not in SERVICES:
        raise ValueError(f"unknown service {name!r} (known: {', '.join(SERVICES)})")
    return name


def _known_link(name: str) -> str:
    if name not in LINK_NAMES:
        raise ValueError(f"unknown link {name!r} (known: {', '.join(sorted(LINK_NAMES))})")
    return name


ServiceName = Annotated[str, AfterValidator(_known_service)]
LinkName = Annotated[str, AfterValidator(_known_link)]


class Fault(BaseModel):
    """One fault kind: subclass it with ``type: Literal["<kind>"] = "<kind>"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    #: for a restart or crash: the fault has stopped acting when ``apply()`` returns
    restored_by_apply: ClassVar[bool] = False
    _work: asyncio.Future[None] | None = PrivateAttr(default=None)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        names = get_args(cls.model_fields["type"].annotation)
        if len(names) != 1 or not isinstance(names[0], str):
            return  # an intermediate class, not a kind of its own
        kind = names[0]
        if kind in KINDS and KINDS[kind].__qualname__ != cls.__qualname__:
            raise TypeError(f"fault type {kind!r} is defined twice: {KINDS[kind]} and {cls}")
        KINDS[kind] = cls

    @property
    @abstractmethod
    def target_service(self) -> str | None:
        """The app service the fault aims at; None for all of them or the database."""

    @property
    @abstractmethod
    def signature(self) -> Signature:
        """What its effect is judged on."""

    @abstractmethod
    def describe(self, ctx: FaultContext | None = None) -> str:
        """One line for reports (with ``ctx``: as it acts on that stack)."""

    @abstractmethod
    async def apply(self, ctx: FaultContext) -> None:
        """Inject the fault."""

    @abstractmethod
    async def revert(self, ctx: FaultContext) -> None:
        """Mend it: idempotent, and safe after a failed or missing ``apply()``."""

    @abstractmethod
    async def active(self, ctx: FaultContext) -> bool:
        """Whether the fault is in place right now."""

    async def observe(self, ctx: FaultContext, when: Moment) -> dict[str, Any]:
        """Evidence of the fault itself, taken ``when`` (none by default)."""
        return {}

    def legacy_refusal(self) -> tuple[str, str, str] | None:
        """Why the legacy design refuses this fault (field, message, hint), or None."""
        return None

    def __eq__(self, other: object) -> bool:
        """Two faults are equal when they say the same: what each did is not compared."""
        if not isinstance(other, Fault):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((type(self), self.model_dump_json()))

    def fresh(self) -> Self:
        """The same fault, having done nothing yet (for another run)."""
        return type(self).model_validate(self.model_dump())

    # -- keeping apply()'s work going when apply() is cancelled --------------------------
    # A call half-way through could still land after revert() and undo it. So the work runs
    # shielded, and revert() first waits for it (each call has its own deadline).

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


def _by_type(value: Any, handler: ValidatorFunctionWrapHandler) -> Fault:
    """A scenario's fault entry, validated as the kind its ``type`` names."""
    if isinstance(value, Fault):
        return value
    if not isinstance(value, Mapping):
        handler(value)  # raises pydantic's own "must be a mapping"
        raise FieldProblem(f"a fault is a mapping, not {value!r}")
    kind = value.get("type")
    if kind is None:
        raise FieldProblem(
            f"required field is missing: the fault type, one of {', '.join(KINDS)}", "type"
        )
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise FieldProblem(f"unknown fault type {kind!r} (known: {', '.join(KINDS)})", "type")
    return cls.model_validate(value)


#: a scenario's fault entry: any registered kind, chosen by its ``type``
FaultEntry = Annotated[SerializeAsAny[Fault], WrapValidator(_by_type)]
_ENTRY: TypeAdapter[Fault] = TypeAdapter(FaultEntry)


def fault_of(entry: Mapping[str, Any] | Fault) -> Fault:
    """The fault a scenario's entry names (``{"type": "link_down", "link": "pg_p2p"}``),
    validated as a scenario file's is; a :class:`Fault` as it is."""
    return _ENTRY.validate_python(entry)
