"""The load runner against a real stack (`harness up`'s): exact samples, counted as the app
counts them, locally and with a master and two Locust workers."""

from __future__ import annotations

import dataclasses
import re
import shutil
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from isolation_harness.chaos.stack.lifecycle import Stack
from isolation_harness.chaos.stack.settings import Settings
from isolation_harness.chaos.stack.state import StackState
from isolation_harness.load.runner import LOCUSTFILE, LoadPlan, LoadResult, LoadRun, run_load
from tests.plugins.pg_cluster import cluster_folder

#: request group -> (method, route template) as the app's metrics name it
ROUTES = {
    "deposits.create": ("POST", "/api/nowpayments/create-deposit"),
    "deposits.get": ("GET", "/api/nowpayments/deposits/{deposit_id}"),
    "deposits.list": ("GET", "/api/nowpayments/deposits"),
    "users.create": ("POST", "/api/users"),
    "admin.credit": ("POST", "/api/admin/credit"),
}


@pytest.fixture(scope="module")
def stack() -> Iterator[StackState]:
    folder = cluster_folder("harness-test-load-")
    settings = Settings.from_env({}).with_overrides(state_dir=folder)
    running = Stack(settings)
    try:
        state, _ = running.up()
        yield state
    finally:
        running.down()
        shutil.rmtree(folder, ignore_errors=True)


def app_counts(state: StackState) -> Counter[tuple[str, str]]:
    """Requests the app answered, per (method, route), summed over statuses and workers."""
    assert state.app is not None
    with urllib.request.urlopen(f"{state.app.url}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    counts: Counter[tuple[str, str]] = Counter()
    for match in re.finditer(r"^http_requests_total\{(.*)\} (\S+)$", text, re.MULTILINE):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match[1]))
        counts[(labels["method"], labels["route"])] += int(float(match[2]))
    return counts


def deposits_plan(state: StackState, users: int, seconds: float, workers: int) -> LoadPlan:
    assert state.app is not None
    return LoadPlan(
        host=state.app.url, users=users, spawn_rate=float(users), duration=seconds,
        mix={"deposits": 1}, admin_token=state.app.admin_token, workers=workers,
    )  # fmt: skip


def assert_counted_like_the_app(result: LoadResult, before: Counter, after: Counter) -> None:
    by_name = Counter(s.name for s in result.samples)
    assert set(by_name) <= set(ROUTES), by_name
    for name, route in ROUTES.items():
        assert by_name[name] == after[route] - before[route], (name, by_name, after - before)


def test_120_users_no_failed_deposit_and_every_request_counted(stack: StackState) -> None:
    before = app_counts(stack)
    result = run_load(deposits_plan(stack, users=120, seconds=15, workers=0))
    after = app_counts(stack)

    creates = [s for s in result.samples if s.name == "deposits.create"]
    assert len(creates) > 500
    assert [s for s in creates if s.failed] == []
    assert all(s.status == 201 for s in creates)
    assert not [s for s in result.samples if s.status == 0]
    assert_counted_like_the_app(result, before, after)

    # Exact statistics: the runner's equal numpy's on the raw samples of this real run.
    stats = result.stats()["deposits.create"]
    latencies = np.array([s.latency_ms for s in creates])
    assert stats.count == len(creates)
    assert stats.p99 == np.percentile(latencies, 99)
    assert stats.p50 == np.percentile(latencies, 50)
    assert stats.max == latencies.max()
    # Every request was recorded before it went out: each 201 is acknowledged, and those
    # the end of the run cut off (no sample) are of unknown outcome.
    made = Counter(o.outcome for o in result.operations if o.kind == "deposit.create")
    assert made["acknowledged"] == len(creates)
    assert set(made) <= {"acknowledged", "indeterminate"}


def test_two_workers_give_the_union_of_their_samples(stack: StackState) -> None:
    before = app_counts(stack)
    result = run_load(deposits_plan(stack, users=20, seconds=6, workers=2))
    after = app_counts(stack)
    workers = [s for s in result.summaries if s.get("role") == "worker"]
    assert len(workers) == 2
    assert all(w["samples"] > 0 for w in workers), workers
    assert sum(w["samples"] for w in workers) == len(result.samples)
    # Each worker names its users with its own index: ten depositors each, none twice.
    users = {s.user for s in result.samples}
    assert users == {f"deposits#{w}.{n}" for w in (0, 1) for n in range(10)}, sorted(
        map(str, users)
    )
    assert_counted_like_the_app(result, before, after)
    assert not [s for s in result.samples if s.failed]


@pytest.mark.parametrize("workers", [0, 2], ids=["local", "distributed"])
def test_every_process_says_how_many_of_its_users_are_signed_up(
    stack: StackState, workers: int
) -> None:
    """What the runner starts a scenario's timeline on; and a run time in fractions of a
    second (a ramp of 5 users at 2 a second) is one Locust accepts."""
    plan = dataclasses.replace(deposits_plan(stack, users=5, seconds=4.5, workers=workers),
                               spawn_rate=2.0)  # fmt: skip
    run = LoadRun(plan)
    run.start()
    try:
        counts = []
        while run.running and len(counts) < 200:
            counts.append(run.started())
            if counts[-1] == plan.users and run.spawned():
                break
            time.sleep(0.05)
        assert counts[-1] == plan.users, (counts, run.running)
        assert counts == sorted(counts)  # one by one, as each user signs up
        assert counts[0] < plan.users  # not before: spawning 5 users takes 2 s
        result = run.wait()
    finally:
        run.stop()
        run.cleanup()
    assert not [s for s in result.samples if s.failed]
    signups = [s for s in result.samples if s.name == "users.create"]
    assert len({s.user for s in signups}) == plan.users


#: Locust takes several locustfiles as one comma-separated -f value
SATURATING = Path(f"{LOCUSTFILE},{Path(__file__).with_name('saturating_locustfile.py')}")


@pytest.mark.parametrize("workers", [0, 1], ids=["local", "distributed"])
def test_locusts_cpu_warning_marks_the_run_saturated(stack: StackState, workers: int) -> None:
    assert stack.app is not None
    plan = LoadPlan(
        host=stack.app.url, users=1, spawn_rate=1.0, duration=2.0, mix={"health": 1},
        admin_token=stack.app.admin_token, workers=workers,
    )  # fmt: skip
    assert run_load(plan).saturated is False  # the harness's own locustfile: no warning here
    result = run_load(dataclasses.replace(plan, locustfile=SATURATING))
    assert result.saturated is True
    assert result.samples  # the users ran all the same
    warned = [s["role"] for s in result.summaries if s.get("cpu_warning")]
    assert warned == (["local"] if workers == 0 else ["worker"]), result.summaries
