"""What a run leaves for the judge: plain records of what happened, no live state.

The runner fills these while it orchestrates; the judge (:func:`chaos.judge.verdict.judge`)
turns them into verdicts without starting or asking anything, so that every verdict can be
tested on made-up evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from isolation_harness.chaos.faults import Fault, FaultContext, Signature
from isolation_harness.chaos.invariants import InvariantResult
from isolation_harness.chaos.scenario.model import Scenario
from isolation_harness.load.samples import Sample

#: one server sample, as the runner took it every second (see ``chaos.run.runner``):
#: ``{"at": epoch s, "pools": {service: {"in_use", "waiting", "size", "free", "max_size",
#: "acquire_timeouts", "dead_connections"}}, "connections": {...}, "toxics": {...},
#: "machine": {"seconds", "cpus", "idle", "app", "postgres"}, "loop": {"lag_max",
#: "lag_buckets"}}``: ``machine`` is the CPU used since the previous sample (``chaos.run.cpu``:
#: ``idle`` a share of the machine, ``app`` and ``postgres`` in CPUs, None if not measured),
#: ``loop`` the app's event-loop lag (``reference_app/loop_lag.py``: the worst of the last
#: second, and the histogram's cumulative counts by upper bound, in seconds)
ServerSample = Mapping[str, Any]


@dataclass
class FaultRecord:
    """One fault of the timeline, and when things happened to it (epoch seconds).

    ``restored_at`` is when the fault stopped acting by its own account: when ``revert()``
    returned, or for a restart or crash, when the database accepted connections again (its
    ``apply()`` returned). ``evidence`` is what the runner observed of the fault itself
    (a postmaster's start time before and after, a fake's count of misbehaving answers).
    """

    kind: str
    description: str
    #: the app service the fault aims at; None: every service (the database itself)
    target: str | None
    #: how a service or provider fault misbehaves (raise, hang, error, slow…), else None
    mode: str | None = None
    #: what the fault's effect is judged on (its kind says: :class:`chaos.faults.Signature`)
    signature: Signature = field(kw_only=True)
    applied_at: float = 0.0
    restored_at: float | None = None
    reverted_at: float | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, fault: Fault, ctx: FaultContext | None = None) -> FaultRecord:
        """The record of ``fault`` as it acts on the stack of ``ctx``, before it is applied."""
        return cls(
            fault.type,
            fault.describe(ctx),
            fault.target_service,
            mode=getattr(fault, "mode", None),
            signature=fault.signature,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "description": self.description,
            "target": self.target,
            "mode": self.mode,
            "signature": asdict(self.signature),
            "applied_at": self.applied_at,
            "restored_at": self.restored_at,
            "reverted_at": self.reverted_at,
            "evidence": self.evidence,
        }


@dataclass
class PhaseRecord:
    """One phase as it ran: its bounds (epoch seconds), its faults, its events."""

    name: str
    start: float = 0.0
    end: float = 0.0
    faults: list[FaultRecord] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def faulted(self) -> bool:
        return bool(self.faults)

    @property
    def restored_at(self) -> float | None:
        """When the last of this phase's faults stopped acting (None: one never did)."""
        times = [f.restored_at for f in self.faults]
        if not times or any(t is None for t in times):
            return None
        return max(t for t in times if t is not None)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "start": self.start,
            "end": self.end,
            "faults": [f.as_dict() for f in self.faults],
            "events": self.events,
        }


@dataclass(frozen=True)
class Limits:
    """The time limits a verdict depends on, as the stack was configured (seconds)."""

    #: the pools' acquire timeout (a starved request's 503 comes after it)
    acquire_timeout: float
    #: the app's time limit per service call (a hang's 503 comes after it)
    service_timeout: float
    #: the load generator's client timeout (a request with no answer gives up after it)
    client_timeout: float


@dataclass(frozen=True)
class Evidence:
    """Everything the judge needs: the scenario, and what the run recorded."""

    scenario: Scenario
    samples: Sequence[Sample]
    phases: Sequence[PhaseRecord]
    limits: Limits
    server: Sequence[ServerSample] = ()
    invariants: Sequence[InvariantResult] = ()
    #: Locust warned that a load-generating process was CPU-bound
    saturated: bool = False
    #: seconds until every service was ready after the last revert (None: never)
    recovered_after: float | None = 0.0
