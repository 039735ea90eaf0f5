"""The load generator's own speed: the runner's requests per second beside wrk's, one run.

    .venv/bin/python bench/loadgen_efficiency.py [--seconds 10] [--users 100] [--rounds 2]

Starts a throw-away stack (`harness up`), then drives the app's `GET /health/live` (no
database, so the app is as fast as it gets and the generator is what is measured) with wrk
(Debian package `wrk`) and with the harness's Locust runner (`health` users, no wait) with 1
and with 2 Locust worker processes, in turns; rounds alternate so that machine noise hits
all alike. Prints each one's median requests per second and the runner/wrk ratio.
Everything started is stopped at the end.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from isolation_harness.chaos.interruption import deferred  # noqa: E402
from isolation_harness.chaos.stack.lifecycle import Stack  # noqa: E402
from isolation_harness.chaos.stack.settings import Settings  # noqa: E402
from isolation_harness.load.runner import LoadPlan, run_load  # noqa: E402
from isolation_harness.load.stats import Window  # noqa: E402

WARMUP = 2.0  # seconds at the start of a runner run left out (users still spawning)


def wrk_rps(url: str, seconds: int, connections: int) -> float:
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", f"{url}/health/live"],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if found is None:
        raise SystemExit(f"wrk printed no rate:\n{out}")
    return float(found[1])


def runner_rps(url: str, token: str, seconds: int, users: int, workers: int) -> tuple[float, bool]:
    plan = LoadPlan(
        host=url, users=users, spawn_rate=float(users), duration=seconds + WARMUP,
        mix={"health": 1}, admin_token=token, workers=workers,
    )  # fmt: skip
    result = run_load(plan)
    window = Window(result.started_at + WARMUP, result.ended_at)
    stats = result.stats(window)
    if stats["*"].failures:
        raise SystemExit(f"the runner saw {stats['*'].failures} failures")
    return stats["*"].rps, result.saturated


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench: wrk is needed (Debian: apt-get install wrk)", file=sys.stderr)
        return 4
    state_dir = Path(tempfile.mkdtemp(prefix="bench-loadgen-"))
    state_dir.chmod(0o755)
    stack = Stack(Settings.from_env({}).with_overrides(state_dir=state_dir))
    try:
        state, _ = stack.up()
        assert state.app is not None
        url, token = state.app.url, state.app.admin_token
        wrk_rps(url, 2, args.users)  # warm up
        wrk_runs: list[float] = []
        runner_runs: dict[int, list[float]] = {1: [], 2: []}
        saturated: dict[int, bool] = {1: False, 2: False}
        for _ in range(args.rounds):
            wrk_runs.append(wrk_rps(url, args.seconds, args.users))
            for workers, runs in runner_runs.items():
                rps, warned = runner_rps(url, token, args.seconds, args.users, workers)
                runs.append(rps)
                saturated[workers] |= warned
        reference = statistics.median(wrk_runs)
        print(f"GET /health/live, {args.users} connections/users, "
              f"{args.rounds} rounds of {args.seconds} s each")  # fmt: skip
        print(f"  wrk                      {reference:9.1f} req/s")
        for workers, runs in runner_runs.items():
            rps = statistics.median(runs)
            flag = "  (Locust CPU warning)" if saturated[workers] else ""
            print(f"  runner, {workers} worker(s)       {rps:9.1f} req/s   "
                  f"ratio {rps / reference:5.2f}{flag}")  # fmt: skip
        print("  target: ratio >= 0.5 with 2 workers")
        return 0
    finally:
        with deferred("stopping the bench's stack"):  # a second Ctrl-C waits for it
            stack.down()
            shutil.rmtree(state_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
