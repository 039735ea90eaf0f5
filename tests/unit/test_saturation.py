"""The machine's saturation on made-up evidence: a run that measured the machine is invalid."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from isolation_harness.chaos.errors import EXIT_INVALID, EXIT_PASS, EXIT_THRESHOLD
from isolation_harness.chaos.judge.evidence import Evidence, PhaseRecord
from isolation_harness.chaos.judge.judgement import judge
from isolation_harness.chaos.judge.saturation import lag_quantile
from isolation_harness.chaos.judge.verdicts import Outcome, ValidityCheck
from isolation_harness.chaos.report.journal import journal
from isolation_harness.chaos.run.record import RunRecord
from tests.unit.judge_data import correct_run, evidence, healthy, p2p_failing, traffic

#: upper bounds of the made-up loop-lag histogram (seconds, as Prometheus writes them)
BOUNDS = ("0.005", "0.1", "0.25", "0.5", "1.0", "+Inf")
#: a busy machine whose services still have room: as correct runs on two CPUs measured
#: (``run``: every process of the run, the load generator and the fakes included)
CALM = {"idle": 0.3, "app": 0.5, "postgres": 0.2, "run": 1.2, "lag": 0.004, "cpus": 2}

Stretch = tuple[float, float, dict[str, Any]]


def server(*stretches: Stretch) -> list[dict[str, Any]]:
    """A server sample every second over each stretch ``(start, end, figures)``: each covers
    the second before it. The loop's histogram counts on: each second nine quick measurements
    and its worst, the gauge's ``lag``."""
    counts = dict.fromkeys(BOUNDS, 0.0)
    found = []
    for start, end, changes in stretches:
        figures = {**CALM, **changes}
        for at in range(int(start) + 1, int(end) + 1):
            for lag in [0.002] * 9 + [figures["lag"]]:
                for bound in BOUNDS:
                    counts[bound] += lag <= float(bound)
            machine = {k: figures[k] for k in ("idle", "app", "postgres", "run", "cpus")}
            found.append(
                {
                    "at": float(at),
                    "machine": {"seconds": 1.0, **machine},
                    "loop": {"lag_max": figures["lag"], "lag_buckets": dict(counts)},
                }
            )
    return found


def run_with(*stretches: Stretch, run: Evidence | None = None) -> Outcome:
    """The correct build's run (or ``run``) with these server figures."""
    return judge(dataclasses.replace(run or correct_run(), server=server(*stretches)))


def machine_checks(outcome: Outcome) -> dict[str, ValidityCheck]:
    return {v.name: v for v in outcome.validity if v.name.startswith("machine not saturated")}


def test_a_phase_with_no_idle_cpu_and_the_app_using_it_all_makes_the_run_invalid() -> None:
    outcome = run_with(
        (0, 14, {}), (14, 18, {"idle": 0.0, "app": 1.9, "postgres": 0.1}), (18, 30, {})
    )
    assert outcome.exit_code() == EXIT_INVALID
    [failed] = [v for v in outcome.validity if not v.passed]
    assert failed.name == "machine not saturated in outage"
    assert failed.detail.startswith("saturated for 4 s in a row: idle 0%, ")
    assert "app 1.9 and PostgreSQL 0.1 of 2 CPUs" in failed.detail
    assert any(
        r.startswith("invalid: machine not saturated in outage: saturated for 4 s")
        for r in outcome.reasons()
    ), outcome.reasons()


def test_postgres_and_the_app_together_at_capacity_are_saturation_too() -> None:
    outcome = run_with((0, 2, {}), (2, 5, {"idle": 0.01, "app": 1.0, "postgres": 0.9}), (5, 30, {}))
    assert outcome.exit_code() == EXIT_INVALID
    assert not machine_checks(outcome)["machine not saturated in baseline"].passed


def test_a_lagging_event_loop_makes_the_run_invalid_even_with_idle_cpu() -> None:
    outcome = run_with((0, 12, {}), (12, 15, {"lag": 0.45}), (15, 30, {}))
    assert outcome.exit_code() == EXIT_INVALID
    failed = machine_checks(outcome)["machine not saturated in outage"]
    assert not failed.passed
    assert "saturated for 3 s in a row" in failed.detail
    assert "loop lag up to 450 ms (p99 over the phase 417 ms)" in failed.detail
    assert "the app blocked its own event loop" in failed.detail  # idle 30% meanwhile


def test_a_loop_lagging_on_a_machine_taken_by_others_is_not_blamed_on_the_app() -> None:
    # seen in make gate: another scenario's run took the CPUs while this app used little
    taken = {"idle": 0.055, "app": 0.3, "postgres": 0.3, "lag": 0.53}
    outcome = run_with((0, 20, {}), (20, 22, taken), (22, 30, {}))
    assert outcome.exit_code() == EXIT_INVALID
    failed = machine_checks(outcome)["machine not saturated in recovery"]
    assert not failed.passed
    assert "blocked its own event loop" not in failed.detail
    assert "other processes took it, and the app's loop waited for a CPU" in failed.detail


def test_figures_under_the_bounds_leave_the_verdict_standing() -> None:
    # A busy machine (no idle CPU, as on two CPUs shared with the load) is not a saturated
    # one while the app and PostgreSQL leave room and the loop keeps time.
    busy = {"idle": 0.0, "app": 0.8, "postgres": 0.4, "lag": 0.12}
    outcome = run_with((0, 30, busy))
    assert outcome.exit_code() == EXIT_PASS, outcome.reasons()
    checks = machine_checks(outcome)
    assert set(checks) == {
        f"machine not saturated in {p}" for p in ("baseline", "outage", "recovery")
    }
    assert all(c.passed for c in checks.values())
    assert (
        "idle 0%, app 0.8 and PostgreSQL 0.4 of 2 CPUs"
        in checks["machine not saturated in outage"].detail
    )

    story = correct_run().scenario
    failing = healthy() + traffic("p2p.trade_open", 0, 10) + traffic("p2p.trade_open", 20, 30)
    failing += p2p_failing(10, 20) + traffic("deposits.create", 10, 20, status=500, failed=True)
    breached = run_with((0, 30, busy), run=evidence(story, failing))
    assert breached.exit_code() == EXIT_THRESHOLD, breached.reasons()


def test_a_single_saturated_second_is_a_blip() -> None:
    outcome = run_with((0, 15, {}), (15, 16, {"idle": 0.0, "app": 2.0, "lag": 0.5}), (16, 30, {}))
    assert outcome.exit_code() == EXIT_PASS, outcome.reasons()
    assert outcome.analysis["machine"]["outage"]["saturated_s"] == 1


def test_without_figures_the_check_says_so_and_the_verdict_stands() -> None:
    """Undefined figures are not evidence of saturation: a phase without any passes, saying
    it was not measured (a machine without /proc, an app that did not answer /metrics)."""
    outcome = judge(correct_run())  # no server samples at all
    assert outcome.exit_code() == EXIT_PASS, outcome.reasons()
    for check in machine_checks(outcome).values():
        assert check.passed
        assert check.detail.startswith("not measured: ")
    assert outcome.analysis["machine"]["outage"]["loop_lag_p99_ms"] is None

    # CPU figures without the loop's (an old app), or the loop's without CPU (no /proc):
    # each judged on what it has.
    no_loop = server((0, 30, {"idle": 0.0, "app": 1.95}))
    for sample in no_loop:
        del sample["loop"]
    assert judge(dataclasses.replace(correct_run(), server=no_loop)).exit_code() == EXIT_INVALID
    no_cpu = server((0, 30, {"lag": 0.3}))
    for sample in no_cpu:
        del sample["machine"]
    assert judge(dataclasses.replace(correct_run(), server=no_cpu)).exit_code() == EXIT_INVALID


def test_each_phase_keeps_its_figures_in_the_journal() -> None:
    run = dataclasses.replace(
        correct_run(), server=server((0, 12, {}), (12, 15, {"lag": 0.45}), (15, 30, {}))
    )
    record = RunRecord(run.scenario, None, 7, started_at=0.0, ended_at=30.0)
    record.phases = list(run.phases)
    record.outcome = judge(run)
    data = json.loads(json.dumps(journal(record)))
    outage = data["timeline"][1]["machine"]
    assert outage == {
        "seconds": 10,
        "cpus": 2,
        "idle_mean": 0.3,
        "idle_min": 0.3,
        "app_cpu_mean": 0.5,
        "app_cpu_max": 0.5,
        "pg_cpu_mean": 0.2,
        "pg_cpu_max": 0.2,
        "run_cpu_mean": 1.2,
        "others_cpu_mean": 0.2,
        "others_cpu_max": 0.2,
        "loop_lag_p99_ms": 416.7,
        "loop_lag_max_ms": 450.0,
        "saturated_s": 3,
    }
    assert data["timeline"][0]["machine"]["loop_lag_p99_ms"] == 4.0  # at most its worst


def test_the_lag_percentile_is_read_between_the_phase_s_histogram_counts() -> None:
    phase = PhaseRecord("outage", 10.0, 20.0)
    samples = server((0, 10, {}), (10, 20, {"lag": 0.5}))
    # 100 measurements in the phase, 10 of them in (0.25, 0.5]: the 99th at 9/10 of it
    assert lag_quantile(phase, samples) == 0.475
    # never above the worst lag measured (a bucket's upper part may hold none)
    assert lag_quantile(phase, server((0, 10, {}), (10, 20, {"lag": 0.34}))) == 0.34
    # the median: the 50th of the 90 measurements in (0, 0.005]
    assert lag_quantile(phase, samples, q=0.5) == pytest.approx(0.005 * 50 / 90)
    restarted = [*samples[:10], *({**s, "loop": {"lag_max": 0.0, "lag_buckets": {
        b: 0.0 for b in BOUNDS}}} for s in samples[10:])]  # fmt: skip
    assert lag_quantile(phase, restarted) is None  # counts went down: the app restarted
    assert lag_quantile(phase, []) is None


#: the gate's miss: a run beside a database crash, the machine's CPUs all taken, the app
#: and PostgreSQL using little of them and the run's own processes not much more
NEIGHBOUR = {"idle": 0.0, "app": 0.4, "postgres": 0.2, "run": 1.1, "lag": 0.2}


def alone(run: Evidence | None = None) -> Evidence:
    """``run`` (the correct one) of a scenario that needs the machine to itself."""
    found = run or correct_run()
    return dataclasses.replace(found, scenario=found.scenario.model_copy(update={"alone": True}))


def alone_checks(outcome: Outcome) -> dict[str, ValidityCheck]:
    return {v.name: v for v in outcome.validity if v.name.startswith("machine to itself")}


def test_a_scenario_that_needs_the_machine_is_invalid_when_others_took_its_cpu() -> None:
    outcome = run_with((0, 12, {}), (12, 17, NEIGHBOUR), (17, 30, {}), run=alone())
    assert outcome.exit_code() == EXIT_INVALID, outcome.reasons()
    assert all(c.passed for c in machine_checks(outcome).values())  # the old rule's miss
    [failed] = [v for v in outcome.validity if not v.passed]
    assert failed.name == "machine to itself in outage"
    assert failed.detail.startswith(
        "shared for 5 s in a row: processes outside the run used up to 0.9 of 2 CPUs with idle 0%"
    ), failed.detail
    assert "alone: true" in failed.detail
    assert any(r.startswith("invalid: machine to itself in outage") for r in outcome.reasons())
    assert outcome.analysis["machine"]["outage"]["others_cpu_max"] == 0.9


def test_a_scenario_without_that_need_runs_beside_others() -> None:
    outcome = run_with((0, 30, NEIGHBOUR))
    assert outcome.exit_code() == EXIT_PASS, outcome.reasons()
    assert not alone_checks(outcome)


def test_the_run_s_own_processes_using_every_cpu_is_not_sharing() -> None:
    own = {"idle": 0.0, "app": 0.9, "postgres": 0.4, "run": 1.85, "lag": 0.05}
    outcome = run_with((0, 30, own), run=alone())
    assert outcome.exit_code() == EXIT_PASS, outcome.reasons()
    checks = alone_checks(outcome)
    assert set(checks) == {f"machine to itself in {p}" for p in ("baseline", "outage", "recovery")}
    assert (
        "outside the run used at most 0.1 of 2 CPUs" in checks["machine to itself in outage"].detail
    )


@pytest.mark.parametrize(
    "figures",
    [
        {**NEIGHBOUR, "idle": 0.2},  # others there, but the machine had CPU to spare
        {**NEIGHBOUR, "run": 1.6},  # 0.4 of 2 CPUs outside the run: under a quarter
    ],
    ids=["spare-cpu", "little-outside"],
)
def test_a_neighbour_that_left_cpu_to_spare_or_took_little_is_not_sharing(
    figures: dict[str, float],
) -> None:
    outcome = run_with((0, 30, figures), run=alone())
    assert outcome.exit_code() == EXIT_PASS, outcome.reasons()


def test_two_shared_seconds_are_a_blip_and_unmeasured_seconds_no_evidence() -> None:
    blip = run_with((0, 12, {}), (12, 14, NEIGHBOUR), (14, 30, {}), run=alone())
    assert blip.exit_code() == EXIT_PASS, blip.reasons()
    unmeasured = server((0, 30, NEIGHBOUR))
    for sample in unmeasured:
        sample["machine"]["run"] = None  # a process of the run restarted meanwhile
    outcome = judge(dataclasses.replace(alone(), server=unmeasured))
    assert outcome.exit_code() == EXIT_PASS, outcome.reasons()
    assert alone_checks(outcome)["machine to itself in outage"].detail.startswith("not measured")
