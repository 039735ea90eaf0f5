"""Made-up evidence for the judge's tests: a scenario, phases, and traffic of any shape."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from isolation_harness.chaos.judge.evidence import Evidence, FaultRecord, Limits, PhaseRecord
from isolation_harness.chaos.scenario.model import Scenario
from isolation_harness.load.samples import Sample

LIMITS = Limits(acquire_timeout=2.0, service_timeout=4.0, client_timeout=5.0)
MIX = {"deposits": 6, "p2p": 2, "wallet": 2, "swap": 2}


def scenario(**changes: Any) -> Scenario:
    """The headline story: baseline, P2P's link cut, recovery; ``changes`` replace fields."""
    data: dict[str, Any] = {
        "name": "made-up",
        "load": {"users": 40, "spawn_rate": 40, "mix": MIX},
        "timeline": [
            {"phase": "baseline", "duration": 10},
            {
                "phase": "outage",
                "duration": 10,
                "faults": [{"type": "link_down", "link": "pg_p2p"}],
            },
            {"phase": "recovery", "duration": 10},
        ],
        "thresholds": {"deposits.*": {"outage": ["error_rate == 0"]}},
    }
    data.update(changes)
    return Scenario.model_validate(data)


def phases_of(story: Scenario, restored_at: dict[str, float] | None = None) -> list[PhaseRecord]:
    """The scenario's phases as run: back to back from t=0, each fault on for its phase."""
    records, start = [], 0.0
    for phase in story.timeline:
        record = PhaseRecord(phase.name, start, start + phase.duration)
        for fault in phase.faults:
            end = (restored_at or {}).get(phase.name, record.end)
            made = FaultRecord.of(fault)
            made.description = f"{fault.type} in {phase.name}"
            made.applied_at, made.restored_at, made.reverted_at = start, end, record.end
            record.faults.append(made)
        records.append(record)
        start = record.end
    return records


def traffic(
    name: str,
    start: float,
    end: float,
    *,
    rate: float = 20.0,
    latency: float = 20.0,
    seed: int = 1,
    **fields: Any,
) -> list[Sample]:
    """Requests to ``name`` at ``rate`` per second over [start, end), lognormal latencies
    around ``latency`` ms; ``fields`` set the rest (status, failed, error_code…)."""
    rng = random.Random(f"{name}{start}{seed}")
    count = int((end - start) * rate)
    status = fields.pop("status", 200)
    return [
        Sample(start + i / rate, name, rng.lognormvariate(0, 0.3) * latency, status, **fields)
        for i in range(count)
    ]


def p2p_failing(start: float, end: float, **fields: Any) -> list[Sample]:
    """P2P's own structured 503s, fast, as the isolated design answers a cut link."""
    shape: dict[str, Any] = {
        "status": 503,
        "failed": True,
        "error_code": "database_unavailable",
        "error_service": "p2p",
        "structured": True,
        "latency": 5.0,
    }
    shape.update(fields)
    return traffic("p2p.trade_open", start, end, **shape)


def unavailable(name: str, start: float, end: float, service: str) -> list[Sample]:
    """Requests to ``name`` answered fast with ``service``'s own structured 503."""
    return traffic(
        name,
        start,
        end,
        status=503,
        failed=True,
        latency=5.0,
        error_code="database_unavailable",
        error_service=service,
        structured=True,
    )


def healthy(start: float = 0.0, end: float = 30.0) -> list[Sample]:
    """Every group of the mix serving, all along."""
    names = ["deposits.create", "deposits.get", "wallet.balances", "swap.quote"]
    return [s for name in names for s in traffic(name, start, end)]


def evidence(
    story: Scenario,
    samples: Iterable[Sample],
    phases: list[PhaseRecord] | None = None,
    **fields: Any,
) -> Evidence:
    return Evidence(
        scenario=story,
        samples=sorted(samples, key=lambda s: s.start),
        phases=phases if phases is not None else phases_of(story),
        limits=fields.pop("limits", LIMITS),
        **fields,
    )


def correct_run(story: Scenario | None = None) -> Evidence:
    """The isolated design under the headline story: only P2P fails, with its own 503s."""
    story = story or scenario()
    samples = healthy()
    samples += traffic("p2p.trade_open", 0, 10) + traffic("p2p.trade_open", 20, 30)
    samples += p2p_failing(10, 20)
    return evidence(story, samples)
