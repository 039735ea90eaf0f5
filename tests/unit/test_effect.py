"""A fault's effect, judged on its own evidence: many synthetic draws each way.

A fault that does nothing must be judged ineffective in at least 99 % of runs, a real one
effective in at least 99 %: measured here over many seeded draws, not asserted once.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from isolation_harness.chaos.faults import DbRestart, DbStop, ProviderFault
from isolation_harness.chaos.judge.effect import (
    database_effect,
    held_effect,
    provider_effect,
    target_effect,
)
from isolation_harness.chaos.judge.evidence import FaultRecord
from isolation_harness.load.samples import Sample

DRAWS = 500
OTHER = ("deposits.create", "deposits")


def phase(
    rng: np.random.Generator,
    *,
    target_rate: int = 200,
    others: int = 400,
    noise: float = 0.01,
    fail: float = 0.0,
    slower: float = 1.0,
    latency: float = 20.0,
    machine: float = 1.0,
) -> list[Sample]:
    """One phase of traffic: P2P (the target) and others, with background noise failures
    (pool timeouts naming their own service) and, for a real fault, P2P's own failures;
    ``machine``: every request that much slower (the machine busy with something else)."""
    n = target_rate + others
    ms = rng.lognormal(0.0, 0.6, n) * latency * machine
    ms[:target_rate] *= slower
    samples = []
    for i, (took, luck) in enumerate(zip(ms.tolist(), rng.random(n).tolist(), strict=True)):
        name, service = ("p2p.trade_open", "p2p") if i < target_rate else OTHER
        if i < target_rate and luck < fail:
            sample = Sample(i, name, took, 503, True, "database_unavailable", service, True)
        elif luck > 1 - noise:
            sample = Sample(i, name, took, 503, True, "pool_timeout", service, True)
        else:
            sample = Sample(i, name, took, 201)
        samples.append(sample)
    return samples


@functools.cache
def default_baseline(draw: int) -> tuple[list[Sample], dict[str, Any]]:
    """Draw ``draw``'s baseline phase, and its generator's state after it: the same for
    every fault measured, so drawn once."""
    rng = np.random.default_rng(draw)
    return phase(rng), rng.bit_generator.state


def share_effective(*, slows: bool = True, **fault: float) -> float:
    hits = 0
    for draw in range(DRAWS):
        baseline, state = default_baseline(draw)
        rng = np.random.default_rng()
        rng.bit_generator.state = state  # as if the baseline had just been drawn from it
        during = phase(rng, **fault)  # type: ignore[arg-type]
        hits += target_effect("p2p", during, baseline, slows=slows).effective
    return hits / DRAWS


def test_a_fault_that_does_nothing_is_ineffective_in_99_percent_of_runs() -> None:
    assert share_effective() <= 0.01


def test_a_no_op_fault_on_a_small_phase_is_ineffective_too() -> None:
    hits = 0
    for draw in range(DRAWS):
        rng = np.random.default_rng(10_000 + draw)
        baseline = phase(rng, target_rate=40, others=120, noise=0.03)
        during = phase(rng, target_rate=40, others=120, noise=0.03)
        hits += target_effect("p2p", during, baseline).effective
    assert hits / DRAWS <= 0.01


def test_a_fault_that_fails_its_target_is_effective_in_99_percent_of_runs() -> None:
    assert share_effective(fail=0.2) >= 0.99


def test_a_fault_that_only_slows_its_target_is_effective_in_99_percent_of_runs() -> None:
    assert share_effective(slower=1.5) >= 0.99


def test_a_no_op_fault_on_a_machine_slower_for_everyone_is_ineffective() -> None:
    """The test suite beside the run: every service a third slower in the faulted phase,
    the target no more than the others."""
    assert share_effective(machine=1.3) <= 0.01


def test_a_fault_that_only_fails_requests_is_not_seen_in_slowness() -> None:
    """A service made to raise (or a link down) that did nothing, while its target happened
    to be slower: not an effect."""
    assert share_effective(slower=1.5, slows=False) <= 0.01
    assert share_effective(fail=0.2, slows=False) >= 0.99


def test_a_hang_leaves_few_requests_and_is_still_seen() -> None:
    hits = 0
    for draw in range(DRAWS):
        rng = np.random.default_rng(20_000 + draw)
        baseline = phase(rng)
        during = phase(rng, target_rate=6, fail=1.0, slower=200.0)
        hits += target_effect("p2p", during, baseline).effective
    assert hits / DRAWS >= 0.99


def test_failures_elsewhere_are_not_the_targets_effect() -> None:
    rng = np.random.default_rng(3)
    baseline = phase(rng)
    during = phase(rng)
    during += [
        Sample(1.0, "deposits.create", 5.0, 503, True, "pool_timeout", "deposits", True)
        for _ in range(200)
    ]
    assert not target_effect("p2p", during, baseline).effective


def test_without_a_baseline_the_signature_must_be_plain() -> None:
    rng = np.random.default_rng(4)
    assert not target_effect("p2p", phase(rng), None).effective
    assert target_effect("p2p", phase(rng, fail=0.5), None).effective
    assert not target_effect("p2p", [], None).effective


def restart(before: str | None, after: str | None) -> FaultRecord:
    record = FaultRecord.of(DbRestart())
    record.evidence = {"postmaster_start_before": before, "postmaster_start_after": after}
    return record


def pools(dead: float) -> dict[str, object]:
    return {"at": 0.0, "pools": {"deposits": {"dead_connections": dead}}}


def test_a_restart_is_effective_only_if_the_postmaster_changed_and_clients_saw_it() -> None:
    seen = [pools(0.0), pools(4.0)]
    assert database_effect(restart("t0", "t1"), [], seen).effective
    # the command returned, but the same postmaster runs: nothing happened
    assert not database_effect(restart("t0", "t0"), [], seen).effective
    assert not database_effect(restart(None, None), [], seen).effective
    # a new postmaster, but no client noticed (no dead connection, no failure)
    assert not database_effect(restart("t0", "t1"), [], [pools(4.0), pools(4.0)]).effective
    dropped = [
        Sample(1.0, "deposits.create", 3.0, 503, True, "database_unavailable", "deposits", True)
    ]
    assert database_effect(restart("t0", "t1"), dropped, [pools(4.0), pools(4.0)]).effective


def test_a_stopped_database_must_have_been_gone() -> None:
    seen = [pools(0.0), pools(2.0)]
    gone, still = FaultRecord.of(DbStop()), FaultRecord.of(DbStop())
    gone.evidence, still.evidence = {"postmaster_down": True}, {"postmaster_down": False}
    assert database_effect(gone, [], seen).effective
    assert not database_effect(still, [], seen).effective


def test_a_provider_fault_is_effective_only_if_the_fake_misbehaved() -> None:
    def fault(before: object, after: object) -> FaultRecord:
        record = FaultRecord.of(ProviderFault(target="payments", mode="error"))
        record.evidence = {"misbehaved_before": before, "misbehaved_after": after}
        return record

    assert provider_effect(fault(3, 10)).effective
    assert not provider_effect(fault(3, 3)).effective
    assert not provider_effect(fault(None, 3)).effective


def test_a_fault_that_starves_every_service_is_still_seen_in_slowness() -> None:
    """The legacy design: P2P's leak takes the one pool, and every service waits; nothing has
    failed yet. Far beyond what a busy machine does, so the others' slowdown is the fault's."""
    assert share_effective(machine=40.0) >= 0.99


def readings(leaked: list[float], pool: str = "p2p") -> list[dict[str, object]]:
    return [
        {"at": float(t), "pools": {pool: {"in_use": 5.0 + held, "leaked": held}}}
        for t, held in enumerate(leaked)
    ]


def test_a_leak_is_seen_in_the_connections_it_holds_when_the_clients_show_nothing() -> None:
    """The legacy design: the one pool (named for no service) is held by P2P's leak; every
    service waits alike, and P2P's few finished requests were no slower."""
    baseline = readings([0, 0, 0, 0], pool="shared")
    assert held_effect("p2p", readings([0, 12, 30, 31, 31], pool="shared"), baseline).effective
    # the isolated design: P2P's own pool, beside the others'
    assert held_effect("p2p", readings([4, 10, 10, 10]), readings([0, 0, 0])).effective


def test_a_leak_that_holds_nothing_is_not_seen() -> None:
    assert not held_effect("p2p", readings([0, 0, 0, 0]), readings([0, 0, 0])).effective
    # held for a moment only
    assert not held_effect("p2p", readings([0, 3, 0, 0]), readings([0, 0, 0])).effective
    # something held already in the baseline: not this fault's doing
    assert not held_effect("p2p", readings([5, 5, 5]), readings([0, 5, 0])).effective
    # another service's pool held is not the target's
    others = readings([20, 20, 20], pool="deposits")
    assert not held_effect("p2p", others, readings([0, 0], pool="deposits")).effective
    assert not held_effect("p2p", [], []).effective
