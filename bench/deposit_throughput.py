"""Create-deposit throughput against a bare aiohttp + aiopg single-INSERT handler, one run.

    .venv/bin/python bench/deposit_throughput.py [--seconds 8] [--connections 100] [--rounds 2]
                                                 [--warmup 2]

Starts a throw-away stack (PostgreSQL, Toxiproxy, the provider fakes, the app with 2
workers: `harness up`), and the bare baselines (bench/bare_insert.py, 2 workers) whose
database link also goes through Toxiproxy. `wrk` (Debian package `wrk`) drives each in turn,
with the same number of connections, each request with its own Idempotency-Key; rounds
alternate so that machine noise hits all alike. Prints requests per second for each and:

- the ratio the issue asks for: the app's create-deposit / a bare single INSERT;
- the ceiling of the flow: a bare handler doing create-deposit's round trips (key lookup,
  provider call through the `payments` link, insert) / the bare single INSERT. No
  implementation of create-deposit on this machine can beat it;
- the app's own efficiency: the app / that bare flow.

Everything started is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from isolation_harness.chaos.interruption import deferred  # noqa: E402
from isolation_harness.chaos.stack import backend, postgres  # noqa: E402
from isolation_harness.chaos.stack.lifecycle import Stack  # noqa: E402
from isolation_harness.chaos.stack.settings import Settings  # noqa: E402
from isolation_harness.chaos.toxiproxy.client import ToxiproxyClient  # noqa: E402
from isolation_harness.topology.ports import LOOPBACK, free_port, is_listening  # noqa: E402
from isolation_harness.topology.services import APP_DATABASE  # noqa: E402

LUA = """
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  wrk.method = "POST"
  wrk.body = '{"currency": "BTC", "amount": "0.01"}'
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer TOKEN"
end
function request()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = "RUN-" .. tid .. "-" .. counter
  return wrk.format(nil, PATH)
end
response = function(status, headers, body)
  if status ~= 201 then bad = (bad or 0) + 1 end
end
done = function(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read +
                 summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT requests=%d seconds=%.3f errors=%d p50_ms=%.2f p99_ms=%.2f\\n",
    summary.requests, summary.duration / 1e6, errors,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


@dataclass
class Measure:
    rps: float
    errors: int
    p50_ms: float
    p99_ms: float


def wrk(url: str, path: str, token: str, seconds: int, connections: int, run: str) -> Measure:
    script = Path(tempfile.mkdtemp()) / "deposit.lua"
    script.write_text(LUA.replace("TOKEN", token).replace("PATH", f'"{path}"').replace("RUN", run))
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "-s", str(script), url],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip
    shutil.rmtree(script.parent, ignore_errors=True)
    found = re.search(
        r"RESULT requests=(\d+) seconds=([\d.]+) errors=(\d+) p50_ms=([\d.]+) p99_ms=([\d.]+)", out
    )
    if found is None:
        raise SystemExit(f"wrk printed no result:\n{out}")
    requests, duration = int(found[1]), float(found[2])
    return Measure(requests / duration, int(found[3]), float(found[4]), float(found[5]))


def new_token(app_url: str) -> str:
    request = urllib.request.Request(  # noqa: S310 - the stack's own http URL
        f"{app_url}/api/users", data=json.dumps({"username": f"bench{os.getpid()}"}).encode(),
        method="POST", headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        return str(json.loads(answer.read())["token"])


async def bare_link(toxiproxy_url: str, pg_port: int) -> int:
    async with ToxiproxyClient(toxiproxy_url) as client:
        proxy = await client.create_proxy(
            "bench_bare", listen=f"{LOOPBACK}:0", upstream=f"{LOOPBACK}:{pg_port}"
        )
        return proxy.listen_port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2, help="seconds of wrk per target first")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench: wrk is needed (Debian: apt-get install wrk)", file=sys.stderr)
        return 4
    state_dir = Path(tempfile.mkdtemp(prefix="bench-deposits-"))
    state_dir.chmod(0o755)
    settings = Settings.from_env({}).with_overrides(state_dir=state_dir, app_workers=args.workers)
    stack = Stack(settings, lambda line: print(f"  {line}", file=sys.stderr))
    bare = None
    try:
        state, _ = stack.up()
        assert state.app is not None
        assert state.postgres is not None
        assert state.toxiproxy is not None
        app_url = state.app.url
        token = new_token(app_url)
        bare_port = free_port()
        link_port = asyncio.run(bare_link(state.toxiproxy.url, state.postgres.port))
        dsn = postgres.with_dbname(state.postgres.dsn, APP_DATABASE)
        dsn = dsn.replace(f"port={state.postgres.port}", f"port={link_port}")
        app_settings = backend.read_settings(Path(state.app.settings_file))
        bare = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "bare_insert.py"), "--dsn", dsn,
             "--port", str(bare_port), "--workers", str(args.workers),
             "--provider", app_settings.payments_url,
             "--api-key", app_settings.payments_api_key],
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not is_listening(bare_port):
            if time.monotonic() > deadline or bare.poll() is not None:
                raise SystemExit("the bare baseline did not start")
            time.sleep(0.05)
        bare_url = f"http://{LOOPBACK}:{bare_port}"
        targets = {
            "app create-deposit": (app_url, "/api/nowpayments/create-deposit"),
            "bare same round trips": (bare_url, "/deposit-flow"),
            "bare single INSERT": (bare_url, "/deposit"),
        }
        # Warm every target up (pools filled, code paths hot) before measuring.
        for url, path in targets.values():
            wrk(url, path, token, args.warmup, args.connections, "warm")
        runs: dict[str, list[Measure]] = {name: [] for name in targets}
        for n in range(args.rounds):
            for i, (name, (url, path)) in enumerate(targets.items()):
                runs[name].append(wrk(url, path, token, args.seconds, args.connections,
                                      f"r{n}t{i}"))  # fmt: skip
        rps = {name: statistics.median(m.rps for m in measures) for name, measures in runs.items()}
        print(f"create-deposit, {args.connections} connections, {args.workers} workers, "
              f"{args.rounds} rounds of {args.seconds} s, through Toxiproxy")  # fmt: skip
        for name, measures in runs.items():
            errors = sum(m.errors for m in measures)
            p99 = max(m.p99_ms for m in measures)
            print(f"  {name:<22} {rps[name]:9.1f} req/s   p99 {p99:7.1f} ms   errors {errors}")
        app, flow, insert = (rps[name] for name in targets)
        print(f"  ratio app / bare INSERT            {app / insert:5.2f}   target >= 0.5")
        print(f"  ceiling: bare flow / bare INSERT   {flow / insert:5.2f}   "
              "(no create-deposit can beat it here)")  # fmt: skip
        print(f"  app / bare flow                    {app / flow:5.2f}   (the app's own overhead)")
        return 0
    finally:
        # A second Ctrl-C (a test runner's worker group gets more than one) must not cut
        # this short: the stack would be left running with its state folder gone.
        with deferred("stopping the bench's processes"):
            if bare is not None:
                bare.terminate()
                bare.wait(timeout=30)
            stack.down()
            shutil.rmtree(state_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
