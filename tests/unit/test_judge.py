"""The judge on made-up evidence: each property, fed the broken data only it catches."""

from __future__ import annotations

import pytest

from isolation_harness.chaos.errors import EXIT_INVALID, EXIT_PASS, EXIT_THRESHOLD
from isolation_harness.chaos.judge.judgement import judge
from isolation_harness.chaos.judge.verdicts import Outcome
from isolation_harness.load.samples import Sample
from tests.unit.judge_data import (
    correct_run,
    evidence,
    healthy,
    p2p_failing,
    phases_of,
    scenario,
    traffic,
    unavailable,
)


def isolation(outcome: Outcome, service: str, phase: str = "outage") -> list[str]:
    """The reasons of the failed isolation verdicts of ``service``."""
    return [
        t.reason
        for t in outcome.thresholds
        if t.source == "isolation"
        and t.group == f"service {service}"
        and t.phase == phase
        and not t.passed
    ]


def test_the_correct_build_passes() -> None:
    outcome = judge(correct_run())
    assert outcome.exit_code() == EXIT_PASS, outcome.reasons()
    judged = {t.group for t in outcome.thresholds if t.source == "isolation"}
    assert judged == {"service deposits", "service p2p", "service wallet", "service swap"}


# -- 2. isolation is judged by default --------------------------------------------------------


def test_target_failing_with_anonymous_500s_cannot_pass() -> None:
    story = scenario()
    samples = healthy() + traffic("p2p.trade_open", 0, 10) + traffic("p2p.trade_open", 20, 30)
    samples += p2p_failing(
        10, 20, status=500, error_code=None, error_service=None, structured=False
    )
    outcome = judge(evidence(story, samples))
    assert outcome.exit_code() == EXIT_THRESHOLD
    [reason] = isolation(outcome, "p2p")
    assert "the fault's target" in reason
    assert "http:500 (unstructured)" in reason


def test_target_failing_in_the_name_of_the_app_cannot_pass() -> None:
    story = scenario()
    samples = healthy() + traffic("p2p.trade_open", 0, 10) + traffic("p2p.trade_open", 20, 30)
    samples += p2p_failing(10, 20, error_code="internal_error", error_service="app")
    outcome = judge(evidence(story, samples))
    assert outcome.exit_code() == EXIT_THRESHOLD
    assert "app:internal_error" in isolation(outcome, "p2p")[0]


def test_target_failing_with_a_body_that_is_not_the_whole_shape_cannot_pass() -> None:
    story = scenario()
    samples = healthy() + traffic("p2p.trade_open", 0, 10) + traffic("p2p.trade_open", 20, 30)
    samples += p2p_failing(10, 20, structured=False)  # e.g. no request_id
    outcome = judge(evidence(story, samples))
    assert "p2p:database_unavailable (unstructured)" in isolation(outcome, "p2p")[0]


def test_target_failing_slowly_breaks_the_fail_fast_bound() -> None:
    story = scenario()
    samples = healthy() + traffic("p2p.trade_open", 0, 10) + traffic("p2p.trade_open", 20, 30)
    samples += p2p_failing(10, 20, latency=3900.0)  # a link cut must fail within 2 s + 1 s
    outcome = judge(evidence(story, samples))
    assert outcome.exit_code() == EXIT_THRESHOLD
    assert "over the 3 s bound" in isolation(outcome, "p2p")[0]
    relaxed = scenario(isolation={"fail_fast": "12s"})
    assert judge(evidence(relaxed, samples)).exit_code() == EXIT_PASS


def test_target_timing_out_on_the_client_is_not_its_own_503() -> None:
    story = scenario()
    samples = healthy() + traffic("p2p.trade_open", 0, 10) + traffic("p2p.trade_open", 20, 30)
    samples += p2p_failing(
        10,
        20,
        status=0,
        error_code=None,
        error_service=None,
        structured=False,
        transport_error="timeout",
        latency=2000.0,
    )
    assert "client:timeout" in isolation(judge(evidence(story, samples)), "p2p")[0]


def test_a_bystander_that_fails_at_all_breaks_isolation() -> None:
    run = correct_run()
    hurt = Sample(15.0, "wallet.balances", 30.0, 503, True, "pool_timeout", "wallet", True)
    outcome = judge(evidence(run.scenario, [*run.samples, hurt]))
    assert outcome.exit_code() == EXIT_THRESHOLD
    [reason] = isolation(outcome, "wallet")
    assert "a bystander" in reason
    assert "wallet:pool_timeout" in reason


def test_every_judged_verdict_carries_its_margin() -> None:
    story = scenario(thresholds={"deposits.*": {"outage": ["error_rate == 0", "p99 < 1s"]}})
    run = correct_run(story)
    hurt = Sample(15.0, "wallet.balances", 30.0, 503, True, "pool_timeout", "wallet", True)
    outcome = judge(evidence(story, [*run.samples, hurt]))
    verdicts = {(t.group, t.expression): t for t in outcome.thresholds}
    held = verdicts["deposits.*", "error_rate == 0"]
    assert (held.margin, held.relative_margin) == (0.0, None)
    fast = verdicts["deposits.*", "p99 < 1s"]
    assert fast.measured is not None
    assert fast.margin == pytest.approx(1000.0 - fast.measured)
    assert fast.relative_margin == pytest.approx(fast.margin / 1000.0)
    # isolation counts the requests that failed wrongly against none
    [bystander] = [t for t in outcome.thresholds if t.group == "service wallet"]
    assert (bystander.passed, bystander.margin) == (False, -1.0)
    [target] = [t for t in outcome.thresholds if t.group == "service p2p"]
    assert (target.passed, target.margin) == (True, 0.0)


def test_a_failure_naming_the_target_in_another_group_breaks_isolation() -> None:
    run = correct_run()
    leak = Sample(15.0, "deposits.create", 30.0, 503, True, "database_unavailable", "p2p", True)
    outcome = judge(evidence(run.scenario, [*run.samples, leak]))
    assert "p2p:database_unavailable" in isolation(outcome, "deposits")[0]


def test_declared_dependencies_may_fail_naming_their_dependency() -> None:
    wallet_cut = [
        {"phase": "baseline", "duration": 10},
        {"phase": "outage", "duration": 10, "faults": [{"type": "link_down", "link": "pg_wallet"}]},
        {"phase": "recovery", "duration": 10},
    ]
    samples = [s for s in healthy() if not s.name.startswith("wallet")]
    samples += traffic("wallet.balances", 0, 10) + traffic("wallet.balances", 20, 30)
    samples += unavailable("wallet.balances", 10, 20, "wallet")
    samples = [s for s in samples if not (s.name == "swap.quote" and 10 <= s.start < 20)]
    samples += unavailable("swap.quote", 10, 20, "wallet")
    samples += traffic("p2p.trade_open", 0, 30)
    undeclared = scenario(timeline=wallet_cut)
    outcome = judge(evidence(undeclared, samples))
    assert outcome.exit_code() == EXIT_THRESHOLD
    assert "a bystander" in isolation(outcome, "swap")[0]
    declared = scenario(timeline=wallet_cut, isolation={"dependencies": {"swap": ["wallet"]}})
    outcome = judge(evidence(declared, samples))
    assert outcome.exit_code() == EXIT_PASS, outcome.reasons()


def test_a_service_silent_under_the_fault_cannot_be_judged() -> None:
    run = correct_run()
    silent = [s for s in run.samples if not (s.name.startswith("wallet") and 10 <= s.start < 20)]
    outcome = judge(evidence(run.scenario, silent))
    assert outcome.exit_code() == EXIT_INVALID
    assert any("made no request in outage" in r for r in outcome.reasons())


def test_isolation_false_turns_it_off_for_a_phase() -> None:
    run = correct_run()
    hurt = Sample(15.0, "wallet.balances", 30.0, 503, True, "pool_timeout", "wallet", True)
    timeline = [dict(p.model_dump(mode="json")) for p in run.scenario.timeline]
    timeline[1]["isolation"] = False
    story = scenario(
        timeline=timeline,
        thresholds={
            "wallet.*": {"outage": ["failures < 5"]},
            "p2p.*": {"outage": ["error_rate > 50%"]},
            "deposits.*": {"outage": ["error_rate == 0"]},
        },
    )
    outcome = judge(evidence(story, [*run.samples, hurt]))
    assert not [t for t in outcome.thresholds if t.source == "isolation"]
    assert outcome.exit_code() == EXIT_PASS, outcome.reasons()


def test_the_blast_radius_shows_who_was_hit() -> None:
    run = correct_run()
    hurt = [
        Sample(15.0 + i / 10, "deposits.create", 30.0, 503, True, "timeout", "p2p", True)
        for i in range(5)
    ]
    outcome = judge(evidence(run.scenario, [*run.samples, *hurt]))
    [row] = outcome.analysis["blast_radius"]
    assert row["targets"] == ["p2p"]
    cells = row["cells"]
    assert cells["p2p"]["target"]
    assert cells["p2p"]["error_rate_change"] == 1.0
    assert cells["p2p"]["named"] == ["p2p"]
    assert cells["deposits"]["hit"]
    assert cells["deposits"]["named"] == ["p2p"]
    assert not cells["wallet"]["hit"]
    assert cells["wallet"]["error_rate_change"] == 0.0


# -- 6. silence never passes ------------------------------------------------------------------


def test_a_count_on_a_silent_group_is_undefined_not_zero() -> None:
    story = scenario(
        thresholds={
            "swap.*": {"recovery": ["failures == 0"]},
            "deposits.*": {"outage": ["error_rate == 0"]},
        }
    )
    run = correct_run(story)
    silent = [s for s in run.samples if not (s.name.startswith("swap") and s.start >= 20)]
    outcome = judge(evidence(story, silent))
    assert outcome.exit_code() == EXIT_INVALID
    [verdict] = [t for t in outcome.thresholds if t.expression == "failures == 0"]
    assert not verdict.defined
    assert "no samples" in verdict.reason
    assert judge(evidence(story, run.samples)).exit_code() == EXIT_PASS


# -- 7. expect: fail names what must fail -------------------------------------------------------


def test_expect_fail_passes_only_if_the_named_threshold_breaches() -> None:
    expect = {"fail": [{"threshold": "error_rate == 0", "group": "deposits.*", "phase": "outage"}]}
    story = scenario(expect=expect)
    correct = judge(correct_run(story))
    assert correct.exit_code() == EXIT_THRESHOLD
    assert "expected failure did not happen" in "\n".join(correct.reasons())
    run = correct_run(story)
    broken = [
        s
        if not (s.name == "deposits.create" and 10 <= s.start < 20)
        else Sample(s.start, s.name, 3000.0, 503, True, "pool_timeout", "deposits", True)
        for s in run.samples
    ]
    outcome = judge(evidence(story, broken))
    assert outcome.expectations[0].happened
    assert outcome.exit_code() == EXIT_PASS
    # another breach than the one named does not count
    other = scenario(
        expect=expect,
        thresholds={
            "deposits.*": {"outage": ["error_rate == 0"]},
            "p2p.*": {"recovery": ["count > 10000"]},
        },
    )
    assert judge(evidence(other, run.samples)).exit_code() == EXIT_THRESHOLD


# -- 9. windows: while it was down, after it came back ---------------------------------------


def test_restored_windows_are_judged_apart() -> None:
    story = scenario(
        timeline=[
            {"phase": "baseline", "duration": 10},
            {"phase": "restart", "duration": 10, "faults": [{"type": "db_restart"}]},
        ],
        thresholds={
            "*": {
                "restart@faulted": ["unstructured_5xx == 0"],
                "restart@restored+2s": ["error_rate == 0"],
            }
        },
        isolation={"fail_fast": "5s"},
    )
    phases = phases_of(story, restored_at={"restart": 11.0})
    phases[1].faults[0].evidence = {"postmaster_start_before": "a", "postmaster_start_after": "b"}
    samples = [s for s in healthy(0, 20) if not 10 <= s.start < 13]
    down = [
        Sample(10.0 + i / 20, n, 5.0, 503, True, "database_unavailable", n.split(".")[0], True)
        for i in range(20)
        for n in ("deposits.create", "wallet.balances", "swap.quote")
    ]
    back = [s for s in healthy(11, 13) if s.start >= 11]
    outcome = judge(evidence(story, [*samples, *down, *back], phases))
    assert outcome.exit_code() == EXIT_PASS, outcome.reasons()
    [timing] = outcome.analysis["faults"]
    assert timing["applied_at"] == 10.0
    assert timing["restored_at"] == 11.0
    assert 10.0 <= timing["effect_seen_at"] < 10.1
    assert 11.0 < timing["served_again_at"] < 11.2
    # a failure 2.5 s after the database came back is judged in the restored window
    late = Sample(13.5, "wallet.balances", 5.0, 503, True, "database_unavailable", "wallet", True)
    outcome = judge(evidence(story, [*samples, *down, *back, late], phases))
    [breach] = [t for t in outcome.thresholds if t.breached]
    assert breach.phase == "restart@restored+2s"


# -- 10. pool pressure ----------------------------------------------------------------------------


def test_in_flight_and_pool_figures_are_metrics() -> None:
    story = scenario(
        load={"users": 120, "spawn_rate": 60, "mix": {"deposits": 1}},
        timeline=[{"phase": "steady", "duration": 10}],
        thresholds={
            "deposits.create": {"steady": ["in_flight_max >= 100"]},
            "deposits.*": {"steady": ["acquire_timeouts == 0", "pool_waiting_max < 5"]},
        },
    )
    crowd = [Sample(1.0 + i / 1000, "deposits.create", 500.0, 201) for i in range(120)]
    crowd += traffic("deposits.get", 0, 10)

    def server(timeouts: float, waiting: float) -> list[dict[str, object]]:
        return [
            {
                "at": float(t),
                "pools": {
                    "deposits": {
                        "in_use": 40.0,
                        "waiting": waiting if t == 5 else 0.0,
                        "acquire_timeouts": timeouts if t > 5 else 0.0,
                    }
                },
            }
            for t in range(11)
        ]

    good = judge(evidence(story, crowd, server=server(0.0, 2.0)))
    assert good.exit_code() == EXIT_PASS, good.reasons()
    measured = {t.expression: t.measured for t in good.thresholds}
    assert measured["in_flight_max >= 100"] == 120
    starved = judge(evidence(story, crowd, server=server(3.0, 30.0)))
    assert {t.expression for t in starved.thresholds if t.breached} == {
        "acquire_timeouts == 0",
        "pool_waiting_max < 5",
    }
    few = crowd[100:]  # 20 creations at once, not 100
    assert judge(evidence(story, few, server=server(0.0, 0.0))).exit_code() == EXIT_THRESHOLD
    none = crowd[120:]  # no creation at all: undefined, not zero
    assert judge(evidence(story, none, server=server(0.0, 0.0))).exit_code() == EXIT_INVALID
    blind = judge(evidence(story, crowd, server=[]))
    assert blind.exit_code() == EXIT_INVALID  # no server sample: the pool figures are undefined


# -- 11. back-to-back faulted phases -------------------------------------------------------------


def test_a_failure_never_lands_silently_in_another_phase() -> None:
    story = scenario(
        timeline=[
            {"phase": "baseline", "duration": 10},
            {
                "phase": "p2p_cut",
                "duration": 10,
                "faults": [{"type": "link_down", "link": "pg_p2p"}],
            },
            {
                "phase": "swap_cut",
                "duration": 10,
                "faults": [{"type": "link_down", "link": "pg_swap"}],
            },
            {"phase": "recovery", "duration": 10},
        ],
        thresholds={"deposits.*": {"p2p_cut": ["error_rate == 0"]}},
    )
    samples = healthy(0, 40)
    samples = [s for s in samples if not (s.name == "swap.quote" and 20 <= s.start < 30)]
    samples += unavailable("swap.quote", 20, 30, "swap")
    samples += traffic("p2p.trade_open", 0, 10) + traffic("p2p.trade_open", 30, 40)
    samples += p2p_failing(10, 20)
    samples += p2p_failing(
        20,
        30,
        seed=2,
        status=200,
        failed=False,
        error_code=None,
        error_service=None,
        structured=False,
        latency=20.0,
    )
    # started under the P2P cut, answered after the swap cut began: stays in p2p_cut
    straddler = Sample(
        19.9, "p2p.trade_open", 2500.0, 503, True, "database_unavailable", "p2p", True
    )
    outcome = judge(evidence(story, [*samples, straddler]))
    assert outcome.exit_code() == EXIT_PASS, outcome.reasons()
    # begun under the P2P cut, it met swap's own fault applied meanwhile: swap_cut's, where
    # swap is the target, not a bystander's failure in p2p_cut
    met_next = Sample(19.9, "swap.quote", 200.0, 503, True, "database_unavailable", "swap", True)
    outcome = judge(evidence(story, [*samples, straddler, met_next]))
    assert outcome.exit_code() == EXIT_PASS, outcome.reasons()
    # the same failure ended before swap's fault: p2p_cut's, where swap is a bystander
    early = Sample(19.0, "swap.quote", 200.0, 503, True, "database_unavailable", "swap", True)
    outcome = judge(evidence(story, [*samples, straddler, early]))
    assert outcome.exit_code() == EXIT_THRESHOLD
    assert any("swap (a bystander)" in line for line in outcome.reasons()), outcome.reasons()
    # a failure in the recovery, where nothing judges swap, is a breach, not silence
    echo = Sample(30.5, "swap.quote", 5.0, 503, True, "database_unavailable", "swap", True)
    outcome = judge(evidence(story, [*samples, straddler, echo]))
    assert outcome.exit_code() == EXIT_THRESHOLD
    [unjudged] = [t for t in outcome.thresholds if t.source == "unjudged"]
    assert (unjudged.group, unjudged.phase) == ("swap.quote", "recovery")
    assert "no threshold judges swap.quote" in unjudged.reason


def test_under_a_database_fault_every_service_is_a_target() -> None:
    """Each may fail with its structured 503 naming any service (the admin's credit goes
    through the wallet), never in the name of the app or of nobody."""
    story = scenario(
        load={"users": 40, "spawn_rate": 40, "mix": {"deposits": 6, "wallet": 2}},
        timeline=[
            {"phase": "baseline", "duration": 10},
            {"phase": "restart", "duration": 10, "faults": [{"type": "db_restart"}]},
        ],
        thresholds={"deposits.*": {"baseline": ["error_rate == 0"]}},
    )
    phases = phases_of(story)
    phases[1].faults[0].evidence = {"postmaster_start_before": "a", "postmaster_start_after": "b"}
    samples = healthy(0, 20) + traffic("admin.credit", 0, 20, rate=2.0)

    def down(name: str, service: str | None, status: int = 503) -> Sample:
        return Sample(
            10.5, name, 5.0, status, True, "database_unavailable", service, service is not None
        )

    through_wallet = down("admin.credit", "wallet")
    outcome = judge(
        evidence(story, [*samples, through_wallet, down("deposits.create", "deposits")], phases)
    )
    assert outcome.exit_code() == EXIT_PASS, outcome.reasons()
    anonymous = Sample(10.5, "deposits.create", 5.0, 500, True)  # a bare 500
    outcome = judge(evidence(story, [*samples, through_wallet, anonymous], phases))
    assert outcome.exit_code() == EXIT_THRESHOLD
    assert "http:500 (unstructured)" in isolation(outcome, "deposits", "restart")[0]


def test_an_app_never_ready_again_breaches_the_scenarios_ready_within() -> None:
    story = scenario(ready_within="3s")
    outcome = judge(evidence(story, correct_run(story).samples, recovered_after=None))
    assert outcome.exit_code() == EXIT_THRESHOLD
    (breach,) = [t for t in outcome.thresholds if not t.passed]
    assert (breach.phase, breach.expression, breach.expected) == ("after", "ready within 3s", 3.0)
    assert "not all ready" in breach.reason
    ready = judge(evidence(story, correct_run(story).samples, recovered_after=2.5))
    assert ready.exit_code() == EXIT_PASS, ready.reasons()
    assert scenario().ready_within == 15.0  # the default
