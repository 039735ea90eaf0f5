"""A scenario, as written in a YAML file: load, a timeline of faults, thresholds, invariants.

This module holds the validated model only (pydantic, frozen, unknown fields refused); reading
a file and reporting problems with their line is :mod:`chaos.scenario_loader`'s job. The
fault classes here are *specifications*: the runner turns each into an object that applies
and reverts it.

Checks that span several fields (a threshold naming a phase of the timeline, a toxic's
attributes against its type…) raise :class:`FieldProblem`, a ``ValueError`` that also says
where, below the field being validated, the problem is; the loader adds that to the path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from chaos.errors import ConfigError
from chaos.links import LINK_NAMES, link_named
from chaos.thresholds import Reference, Threshold, parse_threshold
from chaos.toxiproxy.client import TOXIC_ATTRIBUTES, TOXIC_TYPES
from load.kinds import KINDS, parse_mix
from load.runner import LoadError, parse_duration
from reference_app.settings import SERVICES, AppSettings, Architecture

__all__ = [
    "FAULT_TYPES",
    "INVARIANTS",
    "INVARIANT_ALIASES",
    "DbCrashSpec",
    "DbRestartSpec",
    "DbStopSpec",
    "FaultSpec",
    "FieldProblem",
    "Invariant",
    "LinkDownSpec",
    "LoadSpec",
    "Phase",
    "ProviderFaultSpec",
    "Scenario",
    "ServiceFaultSpec",
    "ToxicSpec",
]

Invariant = Literal[
    "no_operation_lost",
    "provider_reconciled",
    "ledger_balanced",
    "no_negative_balance",
    "escrow_consistent",
    "connections_return_to_baseline",
    "no_toxic_left",
    "acknowledged_deposits_exist",
]
#: older names still accepted in scenario files -> the invariant each stands for
INVARIANT_ALIASES: Mapping[str, Invariant] = {"acknowledged_deposits_exist": "no_operation_lost"}
#: every invariant, checked after the run unless the scenario names a subset
INVARIANTS: tuple[Invariant, ...] = tuple(
    name for name in get_args(Invariant) if name not in INVARIANT_ALIASES
)
#: settings of the app the harness wires itself: a scenario cannot change them
HARNESS_APP_SETTINGS = frozenset(
    {"architecture", "databases", "legacy_database", "admin_dsn", "admin_token", "token_secret",
     "fault_api", "payments_url", "payments_api_key", "ipn_secret", "public_url", "prices_url"}
)  # fmt: skip
VARIANTS: tuple[Architecture, ...] = get_args(Architecture)

#: the service a provider's fault hurts: payments back deposits, prices back swap
PROVIDER_SERVICE: Mapping[str, str] = {"payments": "deposits", "prices": "swap"}

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCENARIO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class FieldProblem(ValueError):
    """A validation problem at ``loc``, a path below the field or model being validated."""

    def __init__(self, message: str, *loc: str | int) -> None:
        super().__init__(message)
        self.loc = loc


# -- field types -----------------------------------------------------------------------------


def _known_service(name: str) -> str:
    if name not in SERVICES:
        raise ValueError(f"unknown service {name!r} (known: {', '.join(SERVICES)})")
    return name


def _known_link(name: str) -> str:
    if name not in LINK_NAMES:
        raise ValueError(f"unknown link {name!r} (known: {', '.join(sorted(LINK_NAMES))})")
    return name


def _duration(value: object) -> float:
    """Seconds, from ``"10s"``, ``"1m30s"``, ``"500ms"`` or a plain number of seconds."""
    if isinstance(value, str):
        if value.strip().startswith("-"):
            raise ValueError(f"duration {value!r} must be positive")
        try:
            return parse_duration(value)
        except LoadError as error:
            raise ValueError(str(error)) from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"duration {value!r} must be a positive number of seconds")
        return float(value)
    raise ValueError(f"a duration is e.g. 10s, 2m, 1m30s or 500ms, not {value!r}")


def _threshold(value: object) -> Threshold:
    if not isinstance(value, str):
        raise ValueError(f"a threshold is a string such as 'p99 < 250ms', not {value!r}")  # noqa: TRY004 - pydantic reports ValueError
    return parse_threshold(value)


ServiceName = Annotated[str, AfterValidator(_known_service)]
LinkName = Annotated[str, AfterValidator(_known_link)]
Seconds = Annotated[float, BeforeValidator(_duration)]
ThresholdExpr = Annotated[Threshold, PlainValidator(_threshold), PlainSerializer(str)]
StrictInt = Annotated[int, Field(strict=True)]
StrictFloat = Annotated[float, Field(strict=True)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _unique(values: tuple[Any, ...], what: str) -> None:
    seen: set[Any] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise FieldProblem(f"{what} {value!r} given twice", index)
        seen.add(value)


# -- faults ----------------------------------------------------------------------------------


def _link_target(name: str) -> str | None:
    link = link_named(name)
    if link.target != "postgres":
        return PROVIDER_SERVICE[link.target]
    # The legacy design's shared link carries every service's traffic.
    return None if link.name == "pg_shared" else link.service


class LinkDownSpec(_Spec):
    """Cut a link: its proxy is disabled, its connections dropped, until the phase ends."""

    type: Literal["link_down"]
    link: LinkName

    @property
    def target_service(self) -> str | None:
        """The service this fault is expected to hurt (None: all of them)."""
        return _link_target(self.link)


class ToxicSpec(_Spec):
    """A Toxiproxy toxic on a link for the phase (any built-in type, stream, toxicity)."""

    type: Literal["toxic"]
    link: LinkName
    toxic: str
    attributes: dict[str, Annotated[int, Field(strict=True, ge=0)]] = Field(default_factory=dict)
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: StrictFloat = Field(default=1.0, ge=0.0, le=1.0)

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
    def target_service(self) -> str | None:
        """The service this fault is expected to hurt (None: all of them)."""
        return _link_target(self.link)


class ServiceFaultSpec(_Spec):
    """Break one service through the app's fault API (``slow`` needs ``slow_ms``)."""

    type: Literal["service"]
    service: ServiceName
    mode: Literal["raise", "hang", "slow", "leak"]
    slow_ms: Annotated[int, Field(strict=True, ge=1, le=600_000)] | None = None

    @model_validator(mode="after")
    def _slow_ms_with_slow(self) -> ServiceFaultSpec:
        if self.mode == "slow" and self.slow_ms is None:
            raise FieldProblem("mode 'slow' needs slow_ms (milliseconds)", "slow_ms")
        if self.mode != "slow" and self.slow_ms is not None:
            raise FieldProblem(f"slow_ms applies to mode 'slow' only, not {self.mode!r}", "slow_ms")
        return self

    @property
    def target_service(self) -> str | None:
        """The service this fault is expected to hurt (None: all of them)."""
        return self.service


class DbRestartSpec(_Spec):
    """Restart PostgreSQL at the start of the phase (``pg_ctl restart -m <mode>``)."""

    type: Literal["db_restart"]
    mode: Literal["fast", "immediate"] = "fast"

    @property
    def target_service(self) -> str | None:
        """None: a database fault hurts every service."""
        return None


class DbCrashSpec(_Spec):
    """Kill PostgreSQL (SIGKILL) at the start of the phase, then start it again."""

    type: Literal["db_crash"]

    @property
    def target_service(self) -> str | None:
        """None: a database fault hurts every service."""
        return None


class DbStopSpec(_Spec):
    """Stop PostgreSQL for the whole phase; start it again when the phase ends."""

    type: Literal["db_stop"]

    @property
    def target_service(self) -> str | None:
        """None: a database fault hurts every service."""
        return None


class ProviderFaultSpec(_Spec):
    """Make an external provider's fake misbehave for the phase.

    ``error`` answers ``status`` (None: the fake's default, 503); ``slow`` waits ``delay_ms``;
    ``malformed`` answers half a body; ``stale`` (prices only) answers prices
    ``stale_seconds`` old (None: the fake's default).
    """

    type: Literal["provider"]
    target: Literal["payments", "prices"]
    mode: Literal["error", "slow", "malformed", "stale"]
    status: Annotated[int, Field(strict=True, ge=400, le=599)] | None = None
    delay_ms: Annotated[int, Field(strict=True, ge=1, le=600_000)] | None = None
    stale_seconds: Annotated[int, Field(strict=True, ge=1)] | None = None

    @model_validator(mode="after")
    def _settings_of_mode(self) -> ProviderFaultSpec:
        if self.mode == "stale" and self.target != "prices":
            raise FieldProblem("mode 'stale' is offered by the prices provider only", "mode")
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
        """The service this fault is expected to hurt: deposits for payments, swap for prices."""
        return PROVIDER_SERVICE[self.target]


FaultSpec = Annotated[
    LinkDownSpec
    | ToxicSpec
    | ServiceFaultSpec
    | DbRestartSpec
    | DbCrashSpec
    | DbStopSpec
    | ProviderFaultSpec,
    Field(discriminator="type"),
]

#: fault ``type`` -> its class
FAULT_TYPES: Mapping[str, type[_Spec]] = {
    get_args(cls.model_fields["type"].annotation)[0]: cls
    for cls in (
        LinkDownSpec,
        ToxicSpec,
        ServiceFaultSpec,
        DbRestartSpec,
        DbCrashSpec,
        DbStopSpec,
        ProviderFaultSpec,
    )
}


# -- load, timeline, scenario ----------------------------------------------------------------


class LoadSpec(_Spec):
    """The simulated clients (see :class:`load.runner.LoadPlan`, which has the same fields)."""

    users: StrictInt = Field(ge=1)
    spawn_rate: StrictFloat = Field(gt=0)
    #: user kind (:data:`load.kinds.KINDS`) -> weight; also accepted as "deposits=6,p2p=2"
    mix: dict[str, Annotated[int, Field(strict=True, ge=1)]]
    #: 0: one local Locust process; N: a master and N workers
    workers: StrictInt = Field(default=0, ge=0)

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


class Phase(_Spec):
    """One step of the timeline: its faults are applied at its start and reverted at its end."""

    phase: str
    duration: Seconds
    faults: tuple[FaultSpec, ...] = ()
    #: services whose idle connections the app closes once the faults are applied, so that
    #: a link fault bites pooled connections at once
    recycle: tuple[ServiceName, ...] = ()

    @field_validator("phase")
    @classmethod
    def _identifier(cls, name: str) -> str:
        if not _IDENTIFIER.fullmatch(name):
            raise ValueError(
                f"phase name {name!r} must be an identifier (letters, digits and _, "
                "not starting with a digit), so that thresholds can say e.g. baseline.p99"
            )
        return name

    @field_validator("recycle")
    @classmethod
    def _recycle_once(cls, services: tuple[str, ...]) -> tuple[str, ...]:
        _unique(services, "service")
        return services

    @property
    def name(self) -> str:
        return self.phase


class Scenario(_Spec):
    """A whole scenario file, validated."""

    name: str
    description: str = ""
    variant: Architecture = "isolated"
    seed: StrictInt | None = None
    load: LoadSpec
    timeline: tuple[Phase, ...] = Field(min_length=1)
    #: request-group glob -> phase name -> thresholds
    thresholds: dict[str, dict[str, tuple[ThresholdExpr, ...]]] = Field(default_factory=dict)
    invariants: tuple[Invariant, ...] = INVARIANTS
    expect: Literal["pass", "fail"] = "pass"
    #: settings of the reference app for this scenario's stack (``AppSettings`` fields,
    #: such as ``deposit_expiry_seconds``); the harness's own wiring is not among them
    app: dict[str, StrictInt | StrictFloat | str | bool] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _slug(cls, name: str) -> str:
        if not _SCENARIO_NAME.fullmatch(name):
            raise ValueError(
                f"scenario name {name!r} must be letters, digits, '.', '_' and '-' "
                "(it names report files and test cases)"
            )
        return name

    @field_validator("timeline")
    @classmethod
    def _phase_names_unique(cls, timeline: tuple[Phase, ...]) -> tuple[Phase, ...]:
        seen: set[str] = set()
        for index, phase in enumerate(timeline):
            if phase.name in seen:
                raise FieldProblem(f"phase {phase.name!r} is defined twice", index, "phase")
            seen.add(phase.name)
        return timeline

    @field_validator("thresholds")
    @classmethod
    def _thresholds_name_phases(
        cls, thresholds: dict[str, dict[str, tuple[Threshold, ...]]], info: ValidationInfo
    ) -> dict[str, dict[str, tuple[Threshold, ...]]]:
        timeline: tuple[Phase, ...] | None = info.data.get("timeline")
        if timeline is None:  # the timeline itself is wrong: reported on its own
            return thresholds
        order = {phase.name: index for index, phase in enumerate(timeline)}
        known = ", ".join(order)
        for glob, by_phase in thresholds.items():
            if not glob.strip():
                raise FieldProblem("a request-group glob cannot be empty (e.g. 'deposits.*')", glob)
            for phase, expressions in by_phase.items():
                if phase not in order:
                    raise FieldProblem(
                        f"phase {phase!r} is not in the timeline (phases: {known})", glob, phase
                    )
                for index, threshold in enumerate(expressions):
                    rhs = threshold.rhs
                    if not isinstance(rhs, Reference):
                        continue
                    if rhs.phase not in order:
                        raise FieldProblem(
                            f"threshold {threshold.text!r} refers to phase {rhs.phase!r}, "
                            f"which is not in the timeline (phases: {known})",
                            glob,
                            phase,
                            index,
                        )
                    if order[rhs.phase] > order[phase]:
                        raise FieldProblem(
                            f"threshold {threshold.text!r} refers to phase {rhs.phase!r}, "
                            f"which comes after {phase!r}",
                            glob,
                            phase,
                            index,
                        )
        return thresholds

    @field_validator("invariants")
    @classmethod
    def _invariants_once(cls, invariants: tuple[Invariant, ...]) -> tuple[Invariant, ...]:
        named = tuple(INVARIANT_ALIASES.get(name, name) for name in invariants)
        _unique(named, "invariant")
        return named

    @field_validator("app")
    @classmethod
    def _app_settings(
        cls, app: dict[str, int | float | str | bool]
    ) -> dict[str, int | float | str | bool]:
        for name in app:
            if name in HARNESS_APP_SETTINGS or name not in AppSettings.model_fields:
                raise FieldProblem(f"{name!r} is not an app setting a scenario may change", name)
        # Validated as the app will: a minimal app with these settings must be valid.
        wiring = {"architecture": "legacy", "legacy_database": {"dsn": "-"},
                  "admin_token": "-" * 16, "token_secret": "-" * 16}  # fmt: skip
        try:
            AppSettings.model_validate({**wiring, **app})
        except ValidationError as exc:
            error = exc.errors()[0]
            raise FieldProblem(error["msg"], *error["loc"]) from None
        return app

    # -- queries ----------------------------------------------------------------------------

    @property
    def phase_names(self) -> tuple[str, ...]:
        return tuple(phase.name for phase in self.timeline)

    @property
    def total_duration(self) -> float:
        """Seconds from the start of the first phase to the end of the last."""
        return sum(phase.duration for phase in self.timeline)

    def phase(self, name: str) -> Phase:
        """The phase called ``name``; KeyError names the known ones."""
        for phase in self.timeline:
            if phase.name == name:
                return phase
        raise KeyError(f"no phase {name!r} (phases: {', '.join(self.phase_names)})")

    def phase_start(self, name: str) -> float:
        """Seconds from the start of the run to the start of phase ``name``."""
        start = 0.0
        for phase in self.timeline:
            if phase.name == name:
                return start
            start += phase.duration
        raise KeyError(f"no phase {name!r} (phases: {', '.join(self.phase_names)})")

    def thresholds_in(self, phase: str) -> list[tuple[str, Threshold]]:
        """The thresholds judged in ``phase``, each with its request-group glob."""
        return [
            (glob, threshold)
            for glob, by_phase in self.thresholds.items()
            for threshold in by_phase.get(phase, ())
        ]

    def with_variant(self, variant: str) -> Scenario:
        """The same scenario against another stack variant (``isolated`` or ``legacy``)."""
        for known in VARIANTS:
            if variant == known:
                return self.model_copy(update={"variant": known})
        raise ConfigError(f"unknown variant {variant!r}", f"use one of {', '.join(VARIANTS)}")
