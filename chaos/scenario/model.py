"""A scenario, as written in a YAML file: load, a timeline of faults, thresholds, invariants.

This module holds the validated model only (pydantic, frozen, unknown fields refused); reading
a file and reporting problems with their line is :mod:`chaos.scenario.loader`'s job. Each
fault entry is validated as the kind its ``type`` names (:mod:`chaos.faults`): the same
object is then applied and reverted by the runner.

Checks that span several fields (a threshold naming a phase of the timeline, a toxic's
attributes against its type…) raise :class:`FieldProblem`, a ``ValueError`` that also says
where, below the field being validated, the problem is; the loader adds that to the path.

*Why one module of this length:* it is one model, a scenario file, and the checks that span
its fields (thresholds against the timeline, expectations against what is checked,
invariants against the mix) read best beside the fields they relate; its parts
(:mod:`.parts`) and field types (:mod:`.fields`) are modules of their own.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from isolation_harness.chaos import invariants as registered
from isolation_harness.chaos.errors import ConfigError, FieldProblem
from isolation_harness.chaos.scenario.fields import (
    Invariant,
    Spec,
    StrictFloat,
    StrictInt,
    ThresholdExpr,
    duration,
    name_matching,
    unique,
)
from isolation_harness.chaos.scenario.parts import (
    Expectation,
    ExpectedFailure,
    IsolationSpec,
    LegacySpec,
    LoadSpec,
    Phase,
)
from isolation_harness.chaos.scenario.thresholds import Reference, Threshold
from isolation_harness.chaos.scenario.windows import Window
from isolation_harness.load.kinds import requests_of
from isolation_harness.reference_app.settings import AppSettings
from isolation_harness.topology.services import DEFAULT_VARIANT, VARIANTS, Variant

__all__ = [
    "NO_THRESHOLDS_HINT",
    "Expectation",
    "ExpectedFailure",
    "Invariant",
    "IsolationSpec",
    "LegacySpec",
    "LoadSpec",
    "Phase",
    "Scenario",
]

#: settings of the app the harness wires itself: a scenario cannot change them
HARNESS_APP_SETTINGS = frozenset(
    {"architecture", "databases", "legacy_database", "admin_dsn", "admin_token", "token_secret",
     "fault_api", "payments_url", "payments_api_key", "ipn_secret", "public_url", "prices_url"}
)  # fmt: skip

_SCENARIO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


# -- field types -----------------------------------------------------------------------------


# -- load, timeline, scenario ----------------------------------------------------------------


def _expectation(value: object) -> object:
    if isinstance(value, str) and value not in ("pass", "fail"):
        raise ValueError(f"must be 'pass' or {{fail: [...]}}, not {value!r}")
    if value == "fail":
        raise ValueError(
            "'expect: fail' must name what must fail, e.g. expect: {fail: [{threshold: "
            "'error_rate == 0', group: 'deposits.*', phase: outage}]} or {fail: [{invariant: "
            "provider_reconciled}]}"
        )
    return value


#: what the loader says when ``thresholds`` is left out
NO_THRESHOLDS_HINT = (
    "required field is missing: a scenario without thresholds judges nothing; write "
    "'thresholds: none' to say so explicitly"
)


def _no_thresholds(value: object) -> object:
    """``thresholds: none`` is the explicit form of nothing; an empty mapping is refused."""
    if value == "none":
        return {}
    if value == {} or value is None:
        raise ValueError("no threshold given: write 'thresholds: none' if that is meant")
    return value


def _no_invariants(value: object) -> object:
    """``invariants: none`` is the explicit form of nothing; an empty list is refused."""
    if value == "none":
        return ()
    if value is None or (isinstance(value, list | tuple) and not value):
        raise ValueError(
            "no invariant given: write 'invariants: none' if that is meant, or leave the "
            "field out to check every invariant the mix exercises"
        )
    return value


class Scenario(Spec):
    """A whole scenario file, validated."""

    name: str
    description: str = ""
    variant: Variant = DEFAULT_VARIANT
    seed: StrictInt | None = None
    load: LoadSpec
    timeline: tuple[Phase, ...] = Field(min_length=1)
    #: request-group glob -> phase or window (``outage@restored+2s``) -> thresholds;
    #: required: ``thresholds: none`` says explicitly that there are none
    thresholds: Annotated[
        dict[str, dict[str, tuple[ThresholdExpr, ...]]], BeforeValidator(_no_thresholds)
    ]
    #: the invariants checked after the run; None (left out): every one the mix exercises;
    #: ``invariants: none`` says explicitly that none is
    invariants: Annotated[tuple[Invariant, ...] | None, BeforeValidator(_no_invariants)] = None
    #: invariant -> the fewest things it must have checked (default 1): fewer is invalid
    min_checked: dict[Invariant, Annotated[int, Field(strict=True, ge=1)]] = Field(
        default_factory=dict
    )
    isolation: IsolationSpec = Field(default_factory=IsolationSpec)
    expect: Annotated[Literal["pass"] | Expectation, BeforeValidator(_expectation)] = "pass"
    #: settings of the reference app for this scenario's stack (``AppSettings`` fields,
    #: such as ``deposit_expiry_seconds``); the harness's own wiring is not among them
    app: dict[str, StrictInt | StrictFloat | str | bool] = Field(default_factory=dict)
    #: how the legacy design is shown to fail this scenario's claim (isolated scenarios)
    legacy: LegacySpec | None = None
    #: every service answers ready within this after the last fault is reverted, or the
    #: run breaches ``ready within``; the run waits for it at most this long
    ready_within: Annotated[float, BeforeValidator(duration), Field(le=600)] = 15.0
    #: its limits are the machine's capacity: the suite runs it with nothing beside it, and
    #: a run that shared the machine anyway is invalid (``judge/saturation.py``)
    alone: StrictBool = False

    @field_validator("name")
    @classmethod
    def _slug(cls, name: str) -> str:
        rule = "letters, digits, '.', '_' and '-' (it names report files and test cases)"
        return name_matching(_SCENARIO_NAME, name, "scenario", rule)

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
        load: LoadSpec | None = info.data.get("load")
        requests = requests_of(tuple(load.mix)) if load is not None else None
        order = {phase.name: index for index, phase in enumerate(timeline)}
        faulted = {phase.name for phase in timeline if phase.faults}
        known = ", ".join(order)
        for glob, by_phase in thresholds.items():
            if not glob.strip():
                raise FieldProblem("a request-group glob cannot be empty (e.g. 'deposits.*')", glob)
            if requests is not None and not any(fnmatch.fnmatchcase(r, glob) for r in requests):
                raise FieldProblem(
                    f"{glob!r} matches no request the mix's users make ({', '.join(requests)})",
                    glob,
                )
            for key, expressions in by_phase.items():
                try:
                    window = Window.parse(key)
                except ValueError as exc:
                    raise FieldProblem(str(exc), glob, key) from None
                phase = window.phase
                if phase not in order:
                    raise FieldProblem(
                        f"phase {phase!r} is not in the timeline (phases: {known})", glob, key
                    )
                if window.anchor is not None and phase not in faulted:
                    raise FieldProblem(
                        f"window {key!r}: phase {phase!r} has no fault to be restored from",
                        glob,
                        key,
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
                            key,
                            index,
                        )
                    if order[rhs.phase] > order[phase]:
                        raise FieldProblem(
                            f"threshold {threshold.text!r} refers to phase {rhs.phase!r}, "
                            f"which comes after {phase!r}",
                            glob,
                            key,
                            index,
                        )
        return thresholds

    @field_validator("invariants")
    @classmethod
    def _invariants_once(
        cls, invariants: tuple[Invariant, ...] | None, info: ValidationInfo
    ) -> tuple[Invariant, ...] | None:
        if invariants is None:
            return None
        named = invariants  # each as its registered name already (older names mapped)
        unique(named, "invariant")
        load: LoadSpec | None = info.data.get("load")
        if load is None:
            return named
        for index, name in enumerate(named):
            needs = registered.REGISTRY[name].needs
            if needs is not None and not needs & set(load.mix):
                raise FieldProblem(
                    f"{name} would check nothing: only {', '.join(sorted(needs))} users make "
                    "what it checks; add one to the mix or leave it out",
                    index,
                )
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
                  "admin_token": "-" * 16, "token_secret": "-" * 16,
                  "payments_api_key": "-" * 16, "ipn_secret": "-" * 16}  # fmt: skip
        try:
            AppSettings.model_validate({**wiring, **app})
        except ValidationError as exc:
            error = exc.errors()[0]
            raise FieldProblem(error["msg"], *error["loc"]) from None
        return app

    @model_validator(mode="after")
    def _expectations_exist(self) -> Scenario:
        if self.expect == "pass":
            return self
        checked = set(self.checked_invariants)
        for index, expected in enumerate(self.expect.fail):
            where = ("expect", "fail", index)
            if expected.invariant is not None and expected.invariant not in checked:
                raise FieldProblem(f"invariant {expected.invariant!r} is not checked by this "
                                   "scenario", *where, "invariant")  # fmt: skip
            if expected.threshold is not None:
                listed = self.thresholds.get(expected.group or "", {}).get(expected.phase or "", ())
                if expected.threshold not in {t.text for t in listed}:
                    raise FieldProblem(
                        f"no threshold {expected.threshold!r} for {expected.group!r} in "
                        f"{expected.phase!r} among this scenario's thresholds",
                        *where,
                        "threshold",
                    )
            if expected.isolation is not None:
                phase = next((p for p in self.timeline if p.name == expected.phase), None)
                if phase is None or not phase.faults or not phase.isolation:
                    raise FieldProblem(
                        f"isolation is not judged in {expected.phase!r} "
                        "(a phase with faults and isolation on)",
                        *where,
                        "phase",
                    )
        return self

    @model_validator(mode="after")
    def _legacy_is_honest(self) -> Scenario:
        for where, message, _ in self.legacy_refusals():
            raise FieldProblem(message, *where)
        if self.legacy is not None and self.legacy.no_claim is not None:
            claims = self.isolation_claims
            if claims:
                raise FieldProblem(
                    f"this scenario judges isolation in {', '.join(claims)} (a fault on one "
                    "service): name its legacy counterpart instead",
                    "legacy",
                    "no_claim",
                )
        return self

    # -- queries ----------------------------------------------------------------------------

    def legacy_refusals(self) -> list[tuple[tuple[str | int, ...], str, str]]:
        """The faults that cannot run on the legacy design (where, message, hint), when this
        scenario runs on it: a link fault on ``pg_<service>`` (:func:`legacy_refusal`)."""
        if self.variant != "legacy":
            return []
        found: list[tuple[tuple[str | int, ...], str, str]] = []
        for p, phase in enumerate(self.timeline):
            for f, fault in enumerate(phase.faults):
                refusal = fault.legacy_refusal()
                if refusal is not None:
                    field, message, hint = refusal
                    found.append((("timeline", p, "faults", f, field), message, hint))
        return found

    @property
    def isolation_claims(self) -> tuple[str, ...]:
        """The phases that judge isolation against a fault aimed at some services only
        (not at the database as a whole): where this scenario claims isolation."""
        return tuple(
            phase.name
            for phase in self.timeline
            if phase.faults
            and phase.isolation
            and all(fault.target_service is not None for fault in phase.faults)
        )

    @property
    def phase_names(self) -> tuple[str, ...]:
        return tuple(phase.name for phase in self.timeline)

    @property
    def checked_invariants(self) -> tuple[Invariant, ...]:
        """The invariants checked after the run (see :attr:`invariants`)."""
        if self.invariants is not None:
            return self.invariants
        return registered.exercised_by(set(self.load.mix))

    def min_checked_of(self, invariant: str) -> int:
        """The fewest things ``invariant`` must have checked for the run to be valid."""
        return next((n for name, n in self.min_checked.items() if name == invariant), 1)

    @property
    def expected_failures(self) -> tuple[ExpectedFailure, ...]:
        return () if self.expect == "pass" else self.expect.fail

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

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Scenario:
        """The scenario a run's journal recorded (its JSON model dump), validated again.

        The dump writes what a file leaves out as null and an explicit nothing as an empty
        list or mapping; they are given back in the file's form (left out, ``none``).
        """
        values = {key: value for key, value in data.items() if value is not None}
        for key, nothing in (("thresholds", {}), ("invariants", [])):
            if values.get(key) == nothing:
                values[key] = "none"
        return cls.model_validate(values)

    def with_variant(self, variant: str) -> Scenario:
        """The same scenario against another stack variant (``isolated`` or ``legacy``)."""
        for known in VARIANTS:
            if variant == known:
                other = self.model_copy(update={"variant": known})
                for where, message, hint in other.legacy_refusals():
                    fault = ".".join(str(part) for part in where[:-1])
                    counterpart = (
                        f"; its legacy counterpart is {self.legacy.counterpart}"
                        if self.legacy is not None and self.legacy.counterpart is not None
                        else ""
                    )
                    raise ConfigError(f"{self.name}: {fault}: {message}", f"{hint}{counterpart}")
                return other
        raise ConfigError(f"unknown variant {variant!r}", f"use one of {', '.join(VARIANTS)}")
