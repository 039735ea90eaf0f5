"""Isolation, judged by default in every faulted phase, and the blast radius of each fault.

Every fault knows its target service (None: the database itself, so every service). In a
faulted phase, for each service whose requests were seen (in the phase or its baseline):

- **the target** must fail with its own structured 503s (an answer in the app's error shape
  exactly, naming the target; 502 too for a provider fault, the app's answer when the
  provider refused), within the fail-fast bound: the pools' acquire timeout, or the app's
  service time limit for faults that slow or hang a service, plus :data:`MARGIN` seconds,
  unless the scenario sets ``isolation.fail_fast``. A client timeout, a bare 500, an error
  naming nobody or somebody else breaks this.
- **a service that depends on the target** (``isolation.dependencies``, e.g. ``swap:
  [wallet]``) may fail, but only with structured 503s naming itself or the target.
- **any other service** must not fail at all in the phase: not one failure, whatever it names.

A database fault has every service as its target: each may fail with a structured 503
naming any service (the admin's credit names the wallet it went through), never ``app``
or nobody. A service that made no request in the
faulted phase although its baseline pace would have made :data:`MIN_EXPECTED` or more cannot
be judged: that is undefined (the run is invalid), not a pass. ``isolation: false`` on a
phase turns this off there.

The blast radius is computed for every run, judged or not: for each faulted phase and each
service, the error rate against the baseline's, the p99 ratio, and whom the failures named.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from isolation_harness.chaos.judge.evidence import FaultRecord, Limits, PhaseRecord
from isolation_harness.chaos.judge.verdicts import ThresholdVerdict
from isolation_harness.chaos.scenario.model import Scenario
from isolation_harness.load.kinds import service_of
from isolation_harness.load.samples import Sample
from isolation_harness.load.stats import error_key
from isolation_harness.reference_app.settings import SERVICES

#: a service silent under a fault is undefined if its baseline pace made this many expected
MIN_EXPECTED = 10.0
#: seconds added to the acquire timeout or service time limit for the answer to come back
MARGIN = 1.0


def by_service(samples: Sequence[Sample]) -> dict[str, list[Sample]]:
    """The samples of each app service (by request name; health probes belong to none)."""
    found: dict[str, list[Sample]] = {}
    for sample in samples:
        service = service_of(sample.name)
        if service is not None:
            found.setdefault(service, []).append(sample)
    return found


def targets_of(faults: Sequence[FaultRecord]) -> frozenset[str] | None:
    """The services a phase's faults aim at; None when one aims at all of them."""
    if any(f.target is None for f in faults):
        return None
    return frozenset(f.target for f in faults if f.target is not None)


def fail_fast_bound(scenario: Scenario, faults: Sequence[FaultRecord], limits: Limits) -> float:
    """Seconds within which a target's failure must come back (see the module docstring)."""
    if scenario.isolation.fail_fast is not None:
        return scenario.isolation.fail_fast
    # a fault that slows or hangs what it breaks fails it within the service time limit; the
    # others (a cut, a raise, a leak, a stopped database) within the pools' acquire timeout
    slow = any(not f.signature.fails_fast for f in faults)
    return (limits.service_timeout if slow else limits.acquire_timeout) + MARGIN


@dataclass(frozen=True)
class _Rule:
    """What one service's failures may be in one faulted phase."""

    may_fail: bool
    names: frozenset[str]
    statuses: frozenset[int]
    bound: float | None


def judge_isolation(
    scenario: Scenario,
    phase: PhaseRecord,
    samples: Sequence[Sample],
    expected: Mapping[str, float],
    limits: Limits,
) -> list[ThresholdVerdict]:
    """The isolation verdicts of one faulted phase: its samples, and how many requests of
    each service its baseline's pace would have made in it (``expected``)."""
    targets = targets_of(phase.faults)
    here = by_service(samples)
    # A service that went quiet is undefined only if it should have spoken: one that makes
    # a request now and then (a top-up) may well make none in a short phase.
    busy = {name for name, count in expected.items() if count >= MIN_EXPECTED}
    seen = sorted(set(here) | busy)
    bound = fail_fast_bound(scenario, phase.faults, limits)
    provider = any(f.signature.evidence == "provider" for f in phase.faults)
    statuses = frozenset({502, 503} if provider else {503})
    dependencies = scenario.isolation.dependencies
    verdicts = []
    for service in seen:
        if targets is None:  # the database: every service is a target, whoever is named
            rule = _Rule(True, frozenset(SERVICES), statuses, bound)
            role = "the fault's target"
        elif service in targets:
            rule = _Rule(
                True, frozenset({service, *dependencies.get(service, ())}), statuses, bound
            )
            role = "the fault's target"
        elif targets & set(dependencies.get(service, ())):
            allowed = frozenset({service, *(targets & set(dependencies[service]))})
            rule = _Rule(True, allowed, statuses, None)
            role = f"depends on {', '.join(sorted(targets & set(dependencies[service])))}"
        else:
            rule = _Rule(False, frozenset(), frozenset(), None)
            role = "a bystander"
        verdicts.append(_verdict(service, role, rule, phase.name, here.get(service, [])))
    return verdicts


def _verdict(
    service: str, role: str, rule: _Rule, phase: str, samples: Sequence[Sample]
) -> ThresholdVerdict:
    group = f"service {service}"
    if rule.may_fail:
        names = "a service" if rule.names == frozenset(SERVICES) else "/".join(sorted(rule.names))
        statuses = "/".join(str(s) for s in sorted(rule.statuses))
        expression = f"isolation: fails only with structured {statuses} naming {names}"
        if rule.bound is not None:
            expression += f" within {rule.bound:g}s"
    else:
        expression = "isolation: unaffected (no failure)"
    if not samples:
        return ThresholdVerdict(
            group,
            phase,
            expression,
            False,
            None,
            None,
            0,
            f"{service} ({role}) made no request in {phase}: cannot be judged",
            source="isolation",
            defined=False,
            op="==",
        )
    failed = [s for s in samples if s.failed]
    if rule.may_fail:
        wrong = [s for s in failed if not _allowed(s, rule)]
        slow = [s for s in failed if rule.bound is not None and s.latency_ms > rule.bound * 1000]
        bad = wrong + [s for s in slow if s not in wrong]
    else:
        bad = failed
    reason = ""
    if bad:
        kinds = _summary(bad)
        reason = (
            f"{service} ({role}): {len(bad)} of {len(samples)} requests failed wrongly: {kinds}"
        )
        if rule.may_fail and any(s.latency_ms > (rule.bound or math.inf) * 1000 for s in bad):
            slowest = max(s.latency_ms for s in bad)
            reason += f"; slowest {slowest:.0f} ms, over the {rule.bound:g} s bound"
    return ThresholdVerdict(
        group,
        phase,
        expression,
        not bad,
        float(len(bad)),
        0.0,
        len(samples),
        reason,
        source="isolation",
        # the requests that failed wrongly, compared with none
        op="==",
    )


def _allowed(sample: Sample, rule: _Rule) -> bool:
    return (
        sample.status in rule.statuses and sample.structured and sample.error_service in rule.names
    )


def _summary(samples: Sequence[Sample]) -> str:
    counts: dict[str, int] = {}
    for sample in samples:
        key = error_key(sample) + (
            "" if sample.structured or sample.status == 0 else " (unstructured)"
        )
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k} ({n})" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def blast_radius(
    phase: PhaseRecord, samples: Sequence[Sample], baseline: Sequence[Sample]
) -> dict[str, Any]:
    """One row of the blast-radius matrix: this faulted phase against every service."""
    targets = targets_of(phase.faults)
    here, before = by_service(samples), by_service(baseline)
    cells: dict[str, dict[str, Any]] = {}
    for service in sorted(set(here) | set(before)):
        now, then = here.get(service, []), before.get(service, [])
        rate, base_rate = _error_rate(now), _error_rate(then)
        p99, base_p99 = _p99(now), _p99(then)
        named = sorted({s.error_service for s in now if s.failed and s.error_service})
        target = targets is None or service in targets
        hit = (not target) and (
            (rate is not None and rate > (base_rate or 0.0))
            or bool(targets and set(named) & targets)
        )
        cells[service] = {
            "target": target,
            "requests": len(now),
            "error_rate": rate,
            "baseline_error_rate": base_rate,
            "error_rate_change": None if rate is None else rate - (base_rate or 0.0),
            "p99_ms": p99,
            "p99_ratio": None if p99 is None or not base_p99 else p99 / base_p99,
            "named": named,
            "hit": hit,
        }
    return {
        "phase": phase.name,
        "faults": [f.description for f in phase.faults],
        "targets": None if targets is None else sorted(targets),
        "cells": cells,
    }


def _error_rate(samples: Sequence[Sample]) -> float | None:
    return sum(1 for s in samples if s.failed) / len(samples) if samples else None


def _p99(samples: Sequence[Sample]) -> float | None:
    if not samples:
        return None
    return float(np.percentile([s.latency_ms for s in samples], 99))
