"""The load achieved as planned, on made-up runs of simulated users, each a loop of a
request and a pause: all planned users ran, and the bystanders of a fault kept their pace."""

from __future__ import annotations

import re
from typing import Any

from isolation_harness.chaos.errors import EXIT_INVALID, EXIT_PASS
from isolation_harness.chaos.judge.judgement import judge
from isolation_harness.chaos.judge.verdicts import Outcome, ValidityCheck
from isolation_harness.load.samples import Sample
from tests.unit.judge_data import correct_run, evidence, scenario

#: the headline story (40 users): 30 depositors and 10 traders, P2P's link cut in the outage
STORY = scenario()
PAUSE = 0.2  # seconds between two requests of a user
P2P_DOWN: dict[str, Any] = {
    "status": 503,
    "failed": True,
    "error_code": "database_unavailable",
    "error_service": "p2p",
    "structured": True,
}


def looping(
    user: str,
    name: str,
    start: float,
    end: float,
    *,
    latency_ms: float = 20.0,
    pause: float = PAUSE,
    **fields: Any,
) -> list[Sample]:
    """One user's requests over [start, end): each sent when the last answer and a pause
    are over."""
    status = fields.pop("status", 200)
    found, at = [], start + int(user.rsplit(".", 1)[1]) / 1000  # users out of step
    while at < end:
        found.append(Sample(at, name, latency_ms, status, user=user, **fields))
        at += latency_ms / 1000 + pause
    return found


def run_of(
    depositors: int = 30,
    traders: int = 10,
    *,
    outage_pause: float = PAUSE,
    outage_latency_ms: float = 20.0,
) -> Outcome:
    """The isolated design under the headline story: depositors all along (in the outage at
    ``outage_pause`` and ``outage_latency_ms``), traders failing fast while P2P is down."""
    samples = []
    for n in range(depositors):
        user = f"deposits#0.{n}"
        samples += looping(user, "deposits.create", 0, 10)
        samples += looping(
            user, "deposits.create", 10, 20, latency_ms=outage_latency_ms, pause=outage_pause
        )
        samples += looping(user, "deposits.create", 20, 30)
    for n in range(traders):
        user = f"p2p#0.{n}"
        samples += looping(user, "p2p.trade_open", 0, 10, pause=1.0)
        samples += looping(user, "p2p.trade_open", 10, 20, latency_ms=5.0, pause=1.0, **P2P_DOWN)
        samples += looping(user, "p2p.trade_open", 20, 30, pause=1.0)
    return judge(evidence(STORY, samples))


def delivery(outcome: Outcome) -> dict[str, ValidityCheck]:
    return {v.name: v for v in outcome.validity if v.name.startswith("load achieved")}


def test_a_run_that_delivered_its_plan_passes() -> None:
    outcome = run_of()
    assert outcome.exit_code() == EXIT_PASS, outcome.reasons()
    checks = delivery(outcome)
    assert set(checks) == {
        "load achieved as planned: users",
        "load achieved as planned in outage",
        "load achieved as planned in recovery",
    }
    assert checks["load achieved as planned: users"].detail == (
        "40 of 40 planned users sent requests by the end of baseline"
    )
    outage = checks["load achieved as planned in outage"].detail
    assert outage.startswith("30 bystander users sent ")  # the traders hit the cut link
    assert "100% of the " in outage


def test_half_the_planned_users_make_the_run_invalid() -> None:
    outcome = run_of(depositors=15, traders=5)
    assert outcome.exit_code() == EXIT_INVALID
    users = delivery(outcome)["load achieved as planned: users"]
    assert not users.passed
    assert users.detail == (
        "20 of 40 planned users sent requests by the end of baseline (at least 36 needed): the "
        "load generator did not run them all"
    )


def test_bystanders_at_half_their_pace_make_the_run_invalid() -> None:
    # Their requests as fast as ever, but sent half as often: the generator fell behind.
    outcome = run_of(outage_pause=2 * PAUSE + 0.02)
    assert outcome.exit_code() == EXIT_INVALID
    pace = delivery(outcome)["load achieved as planned in outage"]
    assert not pace.passed
    assert re.search(r" (49|50|51)% of the \d+ their baseline pace predicts", pace.detail)
    assert "the load generator could not keep up" in pace.detail
    assert any(
        r.startswith("invalid: load achieved as planned in outage: ") for r in outcome.reasons()
    )


def test_bystanders_slowed_by_their_own_latency_keep_their_pace() -> None:
    # A slower service makes fewer requests per user: that is the system, not the generator.
    outcome = run_of(outage_latency_ms=400.0)
    assert delivery(outcome)["load achieved as planned in outage"].passed, outcome.reasons()


def test_without_user_names_or_bystanders_the_pace_is_not_judged() -> None:
    outcome = judge(correct_run())  # made-up samples naming no user
    for check in delivery(outcome).values():
        assert check.passed
        assert check.detail.startswith("not counted: ") or check.detail.startswith(
            "not judged: "
        ), check.detail

    database = scenario(
        timeline=[
            {"phase": "baseline", "duration": 10},
            {"phase": "restart", "duration": 10, "faults": [{"type": "db_restart"}]},
        ],
        thresholds="none",
    )
    samples = [s for n in range(40) for s in looping(f"deposits#0.{n}", "deposits.create", 0, 20)]
    [pace] = [
        c for c in delivery(judge(evidence(database, samples))).values() if "restart" in c.name
    ]
    assert pace.detail == "not judged: the fault aims at every service"


def test_users_spawned_only_after_the_first_phase_do_not_count() -> None:
    # Half the depositors started late: the baseline measured half the planned load.
    samples = [
        s
        for n in range(40)
        for s in looping(f"deposits#0.{n}", "deposits.create", 0 if n < 20 else 12, 30)
    ]
    users = delivery(judge(evidence(STORY, samples)))["load achieved as planned: users"]
    assert not users.passed
    assert users.detail.startswith("20 of 40 planned users sent requests by the end of baseline")
