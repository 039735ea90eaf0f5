"""The parts of a scenario: its load, the phases of its timeline, how isolation is judged,
the failures a counterpart expects, and the legacy counterpart it names."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)

from isolation_harness.chaos.errors import FieldProblem
from isolation_harness.chaos.faults import FaultEntry, ServiceName
from isolation_harness.chaos.scenario.fields import (
    IDENTIFIER,
    Invariant,
    Seconds,
    Spec,
    StrictFloat,
    StrictInt,
    name_matching,
    think_time_of,
    unique,
)
from isolation_harness.load.kinds import KINDS, parse_mix


class LoadSpec(Spec):
    """The simulated clients (see :class:`load.runner.LoadPlan`, which has the same fields)."""

    users: StrictInt = Field(ge=1)
    spawn_rate: StrictFloat = Field(gt=0)
    #: user kind (:data:`load.kinds.KINDS`) -> weight; also accepted as "deposits=6,p2p=2"
    mix: dict[str, Annotated[int, Field(strict=True, ge=1)]]
    #: 0: one local Locust process; N: a master and N workers
    workers: StrictInt = Field(default=0, ge=0)
    #: every user's pause between two tasks, (min, max) seconds, e.g. ``[0s, 300ms]`` or
    #: ``0s`` (none: as many requests in flight as users); None: each kind's own
    think_time: Annotated[tuple[float, float] | None, BeforeValidator(think_time_of)] = None

    @field_validator("mix", mode="before")
    @classmethod
    def _mix_from_text(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_mix(value)
        return value

    @field_validator("mix")
    @classmethod
    def _known_kinds(cls, mix: dict[str, int]) -> dict[str, int]:
        if not mix:
            raise ValueError("the mix names no user kind")
        for kind in mix:
            if kind not in KINDS:
                raise FieldProblem(f"unknown user kind {kind!r} (known: {', '.join(KINDS)})", kind)
        return mix


class Phase(Spec):
    """One step of the timeline: its faults are applied at its start and reverted at its end."""

    phase: str
    duration: Seconds
    faults: tuple[FaultEntry, ...] = ()
    #: services whose idle connections the app closes once the faults are applied, so that
    #: a link fault bites pooled connections at once
    recycle: tuple[ServiceName, ...] = ()
    #: judge isolation in this phase (when it has faults): see :class:`IsolationSpec`
    isolation: bool = True

    @field_validator("phase")
    @classmethod
    def _identifier(cls, name: str) -> str:
        rule = (
            "an identifier (letters, digits and _, not starting with a digit), so that "
            "thresholds can say e.g. baseline.p99"
        )
        return name_matching(IDENTIFIER, name, "phase", rule)

    @field_validator("recycle")
    @classmethod
    def _recycle_once(cls, services: tuple[str, ...]) -> tuple[str, ...]:
        unique(services, "service")
        return services

    @property
    def name(self) -> str:
        return self.phase


class IsolationSpec(Spec):
    """How isolation is judged in every faulted phase (``chaos.judge.isolation``).

    ``fail_fast``: the time within which the target's failures must come back (default: the
    pools' acquire timeout, or the app's service time limit for faults that slow or hang a
    service, plus a margin). ``dependencies``: service -> the services it calls, whose
    failures it may answer with (e.g. ``swap: [wallet]``).
    """

    fail_fast: Seconds | None = None
    dependencies: dict[ServiceName, tuple[ServiceName, ...]] = Field(default_factory=dict)


class ExpectedFailure(Spec):
    """One failure ``expect: {fail: [...]}`` names: exactly one of

    - ``threshold`` (with ``group`` and ``phase``): that threshold of the scenario breaches;
    - ``isolation`` (a service, with ``phase``): isolation of that service fails there;
    - ``invariant``: that invariant is violated.
    """

    threshold: str | None = None
    isolation: ServiceName | None = None
    invariant: Invariant | None = None
    group: str | None = None
    phase: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ExpectedFailure:
        given = [k for k in ("threshold", "isolation", "invariant") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "name exactly one of threshold (with group and phase), isolation (a service, "
                "with phase) or invariant"
            )
        if self.threshold is not None:
            for needed in ("group", "phase"):
                if getattr(self, needed) is None:
                    raise FieldProblem(f"a threshold needs its {needed}", needed)
        if self.isolation is not None and self.phase is None:
            raise FieldProblem("isolation needs the phase in which it must fail", "phase")
        if self.invariant is not None and (self.group or self.phase):
            raise FieldProblem("an invariant is judged on the whole run: no group or phase",
                               "group" if self.group else "phase")  # fmt: skip
        return self

    @property
    def name(self) -> str:
        if self.invariant is not None:
            return f"invariant {self.invariant}"
        if self.isolation is not None:
            return f"isolation of {self.isolation} in {self.phase}"
        return f"threshold {self.group} / {self.phase}: {self.threshold}"


class Expectation(Spec):
    """``expect: {fail: [...]}``: what must fail for the run to pass (a known failure)."""

    fail: tuple[ExpectedFailure, ...] = Field(min_length=1)


class LegacySpec(Spec):
    """``legacy:`` of an isolated scenario: how the old design is shown to fail the same
    claim. Exactly one of:

    - ``counterpart``: the scenario file (relative to this one) that runs the claim on the
      legacy design, with its fault confined to one service's own code path, and
      ``expect: {fail: [...]}`` naming a breach of a service that fault does not target;
    - ``no_claim``: why this scenario makes no isolation claim (e.g. a database restart
      hits every service in both designs).
    """

    counterpart: str | None = None
    no_claim: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> LegacySpec:
        if (self.counterpart is None) == (self.no_claim is None):
            raise ValueError("name exactly one of counterpart (a scenario file) or no_claim "
                             "(why the scenario makes no isolation claim)")  # fmt: skip
        return self
