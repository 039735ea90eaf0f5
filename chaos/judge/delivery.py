"""Was the load delivered as planned? A generator that fell short tested less than planned.

Two checks, both on the samples alone, both conservative: they must never fire on a
correct run, and must fire on a generator that delivered half of what it should.

- **Users** (``load achieved as planned: users``): the runner waits until every user the
  scenario plans (``load.users``) is spawned before the first phase starts, and a user
  sends its first request as it starts (its first task, or signing up), whatever its
  pauses. So at least :data:`USERS_SHARE` of them must have sent a request before the first
  phase ended, counted by the user names the samples carry (``load/seeding.py``). Samples
  that name no user (made-up evidence) leave it unjudged, saying so.
- **Pace** (``load achieved as planned in <phase>``), in every phase after its baseline: a
  faulted phase slows only its target's users, so the *bystanders*, the users active in
  the baseline that sent nothing to a target of the phase, keep their pace. Each user is a
  loop of a request and a pause: the baseline gives their requests per second and mean
  latency, hence their mean pause; the pace expected in the phase is their users over
  (that pause plus their mean latency in the phase). A slower service under the fault is
  thus expected to slow them, and fewer than :data:`PACE_SHARE` of the expected requests
  means the generator could not keep up (a process starved of CPU sends late). A phase
  whose fault aims at every service (a database fault), with no bystander, or with fewer
  than :data:`MIN_EXPECTED` requests expected, is not judged, saying why.

A generator that is slow from the start keeps a slow baseline: that is Locust's own CPU
warning to catch (``load generator not saturated``).
"""

from __future__ import annotations

from collections.abc import Sequence

from isolation_harness.chaos.judge.evidence import PhaseRecord
from isolation_harness.chaos.judge.isolation import targets_of
from isolation_harness.chaos.judge.verdicts import ValidityCheck
from isolation_harness.load.kinds import service_of
from isolation_harness.load.samples import Sample

#: at least this share of the planned users must have made a request in the timeline
#: (every one of them does in a correct run; a tenth is left for what cannot be foreseen)
USERS_SHARE = 0.9
#: the bystanders must send at least this share of the requests their baseline pace and
#: their latency in the phase predict (correct runs of the shipped scenarios measured 0.86
#: to 1.26; a generator at half its pace sends 0.5)
PACE_SHARE = 0.6
#: fewer requests expected than this are too few to judge a pace by
MIN_EXPECTED = 20

USERS_CHECK = "load achieved as planned: users"


def users_check(planned: int, samples: Sequence[Sample], first_phase: PhaseRecord) -> ValidityCheck:
    """Whether the planned users all sent a request before ``first_phase`` ended."""
    if not any(s.user is not None for s in samples):
        return ValidityCheck(USERS_CHECK, True, "not counted: the samples name no user")
    users = {s.user for s in samples if s.user is not None and s.start < first_phase.end}
    needed = USERS_SHARE * planned
    detail = (
        f"{len(users)} of {planned} planned users sent requests by the end of {first_phase.name}"
    )
    if len(users) < needed:
        detail += f" (at least {needed:g} needed): the load generator did not run them all"
    return ValidityCheck(USERS_CHECK, len(users) >= needed, detail)


def pace_check(
    phase: PhaseRecord,
    samples: Sequence[Sample],
    seconds: float,
    baseline: PhaseRecord,
    baseline_samples: Sequence[Sample],
    baseline_seconds: float,
) -> ValidityCheck:
    """Whether the bystanders of ``phase`` kept the pace of ``baseline`` (module docstring)."""
    name = f"load achieved as planned in {phase.name}"
    targets = targets_of(phase.faults)
    if targets is None:
        return ValidityCheck(name, True, "not judged: the fault aims at every service")
    if not any(s.user is not None for s in baseline_samples):
        return ValidityCheck(name, True, "not judged: the samples name no user")
    touched = {s.user for s in samples if service_of(s.name) in targets}
    bystanders = {s.user for s in baseline_samples if s.user is not None} - touched
    if not bystanders:
        return ValidityCheck(name, True, "not judged: every user sent requests to the target")
    before = [s for s in baseline_samples if s.user in bystanders]
    during = [s for s in samples if s.user in bystanders]
    cycle = len(bystanders) * baseline_seconds / len(before)
    latency_before = _mean_latency(before)
    pause = max(0.0, cycle - latency_before)
    latency = _mean_latency(during) if during else latency_before
    expected = len(bystanders) * seconds / max(pause + latency, 1e-9)
    if expected < MIN_EXPECTED:
        return ValidityCheck(
            name, True, f"not judged: {expected:.0f} requests expected (at least {MIN_EXPECTED})"
        )
    share = len(during) / expected
    detail = (
        f"{len(bystanders)} bystander users sent {len(during)} requests, {share:.0%} of the "
        f"{expected:.0f} their {baseline.name} pace predicts (mean latency "
        f"{latency_before * 1000:.0f} ms there, {latency * 1000:.0f} ms here)"
    )
    if share < PACE_SHARE:
        detail += (
            f"; below {PACE_SHARE:.0%} while their own requests were not slow enough to "
            "explain it: the load generator could not keep up"
        )
    return ValidityCheck(name, share >= PACE_SHARE, detail)


def _mean_latency(samples: Sequence[Sample]) -> float:
    """Seconds."""
    return sum(s.latency_ms for s in samples) / len(samples) / 1000 if samples else 0.0
