"""Did a fault bite? Judged on evidence of that fault, never on noise.

A run whose fault did nothing proves nothing, so a fault without a measured effect makes the
run invalid (exit 3). The evidence depends on the kind of fault:

- **link and service faults** (and any fault with a target service): the fault's signature,
  failures of the target's own requests or failures naming the target, was more frequent
  than in the baseline (Fisher's exact test, one-sided, p < :data:`ALPHA`, and by at least
  :data:`MIN_SHARE_RISE` of all requests), or the target's requests got slower (Mann-Whitney
  U, one-sided, p < :data:`ALPHA`, with an effect size, Vargha-Delaney A, of at least
  :data:`MIN_SUPERIORITY`: the chance that a request under the fault is slower than one of
  the baseline) once the machine's own slowdown is taken out, and more than the other
  services' requests did: a machine busy with something else slows every service alike, a
  fault slows its target. The target's latencies are divided by how much slower the others
  answered (the ratio of their geometric means, when above 1 and at most
  :data:`MAX_MACHINE_DRIFT`: beyond, the fault itself starved what they share), and its
  shift in mean log latency must exceed theirs (one-sided z test, p < :data:`ALPHA`). A
  fault that can only fail requests (a link down, a service made to raise) is not seen in
  slowness at all.
  Without a baseline phase, the signature must be at least :data:`MIN_SHARE_ALONE` of the
  requests. (Whether those failures were the right ones, structured 503s naming the
  target, is isolation's verdict, not the effect's.)
- **database restart or crash**: the postmaster's start time changed, and the app's pools saw
  their connections dropped (their dead-connection counter rose, or a request failed with
  ``database_unavailable``). **Database stopped**: the postmaster was gone, and the same.
- **provider faults**: the fake counted the misbehaving answers it gave.

Two tests at :data:`ALPHA` each judge a fault that does nothing effective in at most 1 % of
runs (fewer, with the effect sizes); tests/unit/test_effect.py measures both ways.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from isolation_harness.chaos.judge.evidence import FaultRecord, ServerSample
from isolation_harness.load.kinds import service_of
from isolation_harness.load.samples import Sample
from isolation_harness.reference_app.settings import LEGACY_POOL

ALPHA = 0.005
MIN_SUPERIORITY = 0.56
#: the fewest requests of the other services, in the phase and in the baseline, to measure
#: how much slower the machine itself answered
MIN_OTHERS = 20
#: the other services slower than this (geometric mean) is not the machine: the fault
#: starved something they share (the legacy design's one pool), and is judged as it is
MAX_MACHINE_DRIFT = 3.0
MIN_SHARE_RISE = 0.01
MIN_SHARE_ALONE = 0.05
#: a leak is seen when it held connections in at least this share of the phase's readings
MIN_HELD_SHARE = 0.5


@dataclass(frozen=True)
class Effect:
    effective: bool
    detail: str


def target_effect(
    target: str,
    during: Sequence[Sample],
    baseline: Sequence[Sample] | None,
    *,
    slows: bool = True,
) -> Effect:
    """Evidence that the fault hurt ``target``, from every request of the phase (``during``)
    against every request of the baseline; ``slows``: False for a fault that can only make
    requests fail, whose slowness would be the machine's."""
    own, others = _split(during, target)
    if not own:
        return Effect(False, f"no request to {target} during the fault")
    hits = sum(1 for s in during if _signature(s, target))
    share = hits / len(during)
    if baseline is None or not baseline:
        return Effect(
            share >= MIN_SHARE_ALONE,
            f"{hits} of {len(during)} requests failed as {target}'s (no baseline: "
            f"{MIN_SHARE_ALONE:.0%} needed)",
        )
    before = sum(1 for s in baseline if _signature(s, target))
    table = np.array([[hits, len(during) - hits], [before, len(baseline) - before]])
    p_fail = float(_scipy_stats().fisher_exact(table, alternative="greater").pvalue)
    failing = p_fail < ALPHA and share - before / len(baseline) >= MIN_SHARE_RISE
    detail = (
        f"{target}: failed as its own {before}/{len(baseline)} -> {hits}/{len(during)} "
        f"(p={p_fail:.2g})"
    )
    if not slows:
        return Effect(failing, detail + "; a fault that only fails requests: slowness not counted")
    own_before, others_before = _split(baseline, target)
    if not own_before:
        return Effect(failing, detail + "; no request to it in the baseline to compare speed")
    machine = (
        _log_shift(others, others_before)
        if len(others) >= MIN_OTHERS and len(others_before) >= MIN_OTHERS
        else None
    )
    drift = math.exp(max(0.0, machine[0])) if machine else 1.0
    if drift > MAX_MACHINE_DRIFT:
        # Not the machine: a shared resource the fault starved (the legacy design's pool).
        machine, drift = None, 1.0
    slower, superiority, p_slow = _slower(own, own_before, drift)
    detail += f"; slower than the baseline with probability {superiority:.2f} (p={p_slow:.2g})"
    if machine is not None:
        # the target slowed more than the others: its shift against theirs, one-sided
        shift, variance = _log_shift(own, own_before)
        z = (shift - machine[0]) / math.sqrt(max(variance + machine[1], 1e-12))
        p_apart = 0.5 * math.erfc(z / math.sqrt(2.0))  # the normal's upper tail
        slower = slower and p_apart < ALPHA
        detail += f", the machine {drift:.2g}x slower for the others (p={p_apart:.2g} apart)"
    return Effect(failing or slower, detail)


def _scipy_stats() -> ModuleType:
    """scipy.stats, imported when a fault is judged: a second of start-up that every other
    ``harness`` command (validate, up, status, down) would pay."""
    from scipy import stats

    return stats


def _split(samples: Sequence[Sample], target: str) -> tuple[list[Sample], list[Sample]]:
    """The requests ``target`` answered, and the others' (one pass: phases are long)."""
    own: list[Sample] = []
    others: list[Sample] = []
    for sample in samples:
        (own if service_of(sample.name) == target else others).append(sample)
    return own, others


def _log_shift(during: Sequence[Sample], baseline: Sequence[Sample]) -> tuple[float, float]:
    """How much slower ``during`` answered than ``baseline``, as the difference of their mean
    log latencies, and that difference's variance."""
    now = np.log([max(s.latency_ms, 0.001) for s in during])
    before = np.log([max(s.latency_ms, 0.001) for s in baseline])
    variance = _var(now) / len(now) + _var(before) / len(before)
    return float(now.mean() - before.mean()), variance


def _var(values: np.ndarray) -> float:
    return float(values.var(ddof=1)) if len(values) > 1 else 0.0


def _signature(sample: Sample, target: str) -> bool:
    """A failure of the target's own request, or one naming the target."""
    return sample.failed and (service_of(sample.name) == target or sample.error_service == target)


def _slower(
    during: Sequence[Sample], baseline: Sequence[Sample], drift: float = 1.0
) -> tuple[bool, float, float]:
    faulted = [s.latency_ms / drift for s in during]
    normal = [s.latency_ms for s in baseline]
    result = _scipy_stats().mannwhitneyu(faulted, normal, alternative="greater")
    superiority = float(result.statistic) / (len(faulted) * len(normal))
    p_value = float(result.pvalue)
    return p_value < ALPHA and superiority >= MIN_SUPERIORITY, superiority, p_value


def held_effect(
    target: str, during: Sequence[ServerSample], baseline: Sequence[ServerSample]
) -> Effect:
    """Evidence that a leak holds connections of ``target``'s pool (the one pool of the
    legacy design), as the app counts them: in most of the phase's readings, and in none of
    the baseline's.

    What the clients see of a leak can be nothing the other checks tell from a busy machine:
    in the legacy design every service waits for the one pool alike, and the target's own
    requests finish no slower than before (its users are stuck in requests that never end)."""
    now, before = _held(target, during), _held(target, baseline)
    if not now:
        return Effect(False, f"no reading of {target}'s pool during the fault")
    share = sum(1 for held in now if held > 0) / len(now)
    effective = share >= MIN_HELD_SHARE and not any(before)
    return Effect(
        effective,
        f"{target}'s pool had up to {max(now):g} connection(s) held by the leak, in "
        f"{share:.0%} of the readings ({max(before, default=0):g} in the baseline)",
    )


def _held(target: str, server: Sequence[ServerSample]) -> list[float]:
    """How many connections of ``target``'s pool a leak held, reading by reading."""
    held = []
    for entry in server:
        pools = entry.get("pools")
        pool = pools.get(target) or pools.get(LEGACY_POOL) if isinstance(pools, dict) else None
        if isinstance(pool, dict) and "leaked" in pool:
            held.append(float(pool["leaked"]))
    return held


def database_effect(
    fault: FaultRecord, during: Sequence[Sample], server: Sequence[ServerSample]
) -> Effect:
    """Evidence that the database really went down, and that the app's pools noticed."""
    evidence = fault.evidence
    if "postmaster_down" in evidence:  # stopped (a restart or crash: its start times)
        happened = bool(evidence.get("postmaster_down"))
        what = "the postmaster was gone" if happened else "the postmaster was still running"
    else:
        before, after = (
            evidence.get("postmaster_start_before"),
            evidence.get("postmaster_start_after"),
        )
        happened = before is not None and after is not None and before != after
        what = (
            f"postmaster started {before} -> {after}"
            if happened
            else f"the postmaster's start time did not change ({before} -> {after})"
        )
    dropped = _dead_connections(server)
    refused = sum(1 for s in during if s.failed and s.error_code == "database_unavailable")
    noticed = dropped > 0 or refused > 0
    return Effect(
        happened and noticed,
        f"{what}; the pools replaced {dropped:g} dead connection(s), {refused} request(s) "
        "failed with database_unavailable",
    )


def _dead_connections(server: Sequence[ServerSample]) -> float:
    totals = []
    for entry in server:
        pools = entry.get("pools")
        if isinstance(pools, dict) and pools:
            totals.append(sum(float(p.get("dead_connections", 0)) for p in pools.values()))
    return totals[-1] - totals[0] if len(totals) >= 2 else 0.0


def provider_effect(fault: FaultRecord) -> Effect:
    """Evidence that the fake provider gave misbehaving answers while the fault was on."""
    before = fault.evidence.get("misbehaved_before")
    after = fault.evidence.get("misbehaved_after")
    if not isinstance(before, int) or not isinstance(after, int):
        return Effect(False, "the fake's count of misbehaving answers was not read")
    return Effect(after > before, f"the fake gave {after - before} misbehaving answer(s)")
