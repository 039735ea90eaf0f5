"""The gate's stability: how often each shipped scenario passes a correct build, alone and
beside the rest of the test suite, and how close its thresholds came to their limits.

    .venv/bin/python bench/stability.py [--alone 20] [--beside 10] [SCENARIO.yaml ...]

Each scenario (default: every file under ``scenarios/``, its legacy counterparts included)
runs ``--alone`` times in a row on an idle machine (``harness run FILE --repeat N``), then
``--beside`` times while the rest of ``make test`` runs next to it (``pytest -n 2`` without
the scenario tests, started again whenever it ends, stopped afterwards: two workers that may
both run a heavy test, one more than ``make test``'s heavy slots leave beside a scenario on
two cores). A scenario whose
``expect:`` names failures passes when they, and nothing else, happened. A scenario that
needs the machine to itself (``alone: true``: its limits are capacity) is not run beside
the suite: there it is invalid by design (``machine to itself``), and the gate runs it alone.

Prints per scenario and condition: the pass rate (``k/N``), the exit codes seen, the
threshold that came closest to its limit (its smallest margin, absolute and relative to the
limit, over the runs), and each run's fixed cost as its journal records it: the wall time of
a run beyond its judged phases (stack start, ramp, the wait for readiness, invariants,
teardown), the cost ``make gate`` pays once per scenario, with its largest step. Reports go
to a temporary folder (``--reports`` keeps them). Nothing is timed against a limit here: the
figures are for people to read.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from isolation_harness.chaos.report.repetition import closest as closest_threshold  # noqa: E402
from isolation_harness.chaos.scenario.loader import load_scenario  # noqa: E402

HARNESS = str(ROOT / ".venv" / "bin" / "harness")
PYTEST = str(ROOT / ".venv" / "bin" / "pytest")
#: the rest of ``make test``: everything but the tests that run scenarios themselves
BESIDE = [PYTEST, "-n", "2", "--dist", "worksteal", "-q", "-p", "no:cacheprovider", "tests",
          "--deselect", "tests/chaos/test_scenarios.py"]  # fmt: skip
#: seconds the suite runs before the first measured run: its first tests start stacks too
SETTLE = 20.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="scenario files (default: all)")
    parser.add_argument("--alone", type=int, default=20, help="runs on an idle machine")
    parser.add_argument("--beside", type=int, default=10, help="runs beside the test suite")
    parser.add_argument("--reports", type=Path, help="keep the reports in this folder")
    args = parser.parse_args(argv)
    for name in ("alone", "beside"):
        if getattr(args, name) == 1:  # a pass rate needs runs to compare (repeat.json)
            parser.error(f"--{name}: 0 to skip, or at least 2 runs")
    files = args.files or sorted((ROOT / "scenarios").rglob("*.yaml"))
    reports = args.reports or Path(tempfile.mkdtemp(prefix="stability-"))
    rows: list[dict[str, Any]] = []
    try:
        for path in files:
            if args.alone:
                rows.append(measure(path, args.alone, reports / "alone", "alone"))
                print_row(rows[-1])
        if args.beside:
            shared = [path for path in files if not load_scenario(path).alone]
            for path in sorted(set(files) - set(shared)):
                print(f"{path.name}: not run beside the suite (alone: true)", flush=True)
            with suite_beside(reports / "beside-suite.log"):
                for path in shared:
                    rows.append(measure(path, args.beside, reports / "beside", "beside"))
                    print_row(rows[-1])
    finally:
        if args.reports is None:
            shutil.rmtree(reports, ignore_errors=True)
    print_summary(rows)
    return 0 if all(row["passes"] == row["runs"] for row in rows) else 1


def measure(path: Path, runs: int, reports: Path, condition: str) -> dict[str, Any]:
    """``harness run path --repeat runs``: its repeat.json figures and the wall time."""
    scenario = load_scenario(path)
    started = time.monotonic()
    subprocess.run(
        [HARNESS, "run", str(path), "--repeat", str(runs), "--reports", str(reports)],
        cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        check=False, timeout=runs * (scenario.total_duration + 180),
    )  # fmt: skip
    wall = time.monotonic() - started
    found = json.loads((reports / f"{scenario.name}-{scenario.variant}" / "repeat.json")
                       .read_text())["scenarios"][0]  # fmt: skip
    closest = closest_threshold(found["thresholds"])
    breached = [t for t in found["thresholds"] if t["breached"]]
    journals = [json.loads(Path(path).read_text()) for path in found["journals"]]
    costs = [j["fixed_cost_seconds"] for j in journals if "fixed_cost_seconds" in j]
    steps: dict[str, list[float]] = {}
    for journal in journals:
        for step, seconds in (journal.get("step_seconds") or {}).items():
            if step != "phases":
                steps.setdefault(step, []).append(seconds)
    return {
        "scenario": scenario.name,
        "variant": scenario.variant,
        "condition": condition,
        "runs": found["runs"],
        "passes": found["passes"],
        "exit_codes": found["exit_codes"],
        "closest": closest,
        "breached": [
            f"{t['group']} / {t['phase']}: {t['expression']} ({t['breached']}x)" for t in breached
        ],
        # the journals' own figure; the command's wall time (Python's start included) else
        "fixed_cost": (
            statistics.median(costs)
            if costs
            else wall / max(1, found["runs"]) - scenario.total_duration
        ),
        "largest_step": max(
            ((step, statistics.median(values)) for step, values in steps.items()),
            key=lambda pair: pair[1],
            default=None,
        ),
    }


@contextlib.contextmanager
def suite_beside(log: Path) -> Iterator[None]:
    """The rest of the test suite, running (again and again) until the block ends."""
    log.parent.mkdir(parents=True, exist_ok=True)
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started in the background (``nohup … &``), this process ignores SIGINT, and so
        # would the suite (an ignored signal stays ignored across exec): it would go on
        # starting stacks after the SIGINT meant to stop it, until a harder signal killed
        # its workers in the middle of one. A handled signal is reset to the default in a
        # child, so the suite gets a Ctrl-C it answers.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    stop = threading.Event()
    current: list[subprocess.Popen[bytes]] = []

    def loop() -> None:
        with log.open("ab") as out:
            while not stop.is_set():
                process = subprocess.Popen(
                    BESIDE,
                    cwd=ROOT,
                    env=_env(),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                current[:] = [process]
                while process.poll() is None and not stop.is_set():
                    time.sleep(0.5)

    thread = threading.Thread(target=loop, name="suite-beside", daemon=True)
    thread.start()
    time.sleep(SETTLE)
    try:
        yield
    finally:
        stop.set()
        for process in current:
            _stop_suite(process)
        thread.join()


def _stop_suite(process: subprocess.Popen[bytes]) -> None:
    """Stop the suite as Ctrl-C would, so that its fixtures stop what they started (their
    PostgreSQL clusters run as another user, out of reach of a signal to the group); harder
    only if it does not end."""
    for sig, wait in ((signal.SIGINT, 120), (signal.SIGTERM, 30), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        return


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "PYTEST_"))}


def _margin(row: dict[str, Any]) -> str:
    closest = row["closest"]
    if closest is None:
        return "-"
    relative = closest["relative_min"]
    share = f" ({relative:+.0%})" if relative is not None else ""
    return (f"{closest['group']} / {closest['phase']}: {closest['expression']}: "
            f"min {closest['min']:+.4g}{share}")  # fmt: skip


def _largest(row: dict[str, Any]) -> str:
    largest = row.get("largest_step")
    return "" if largest is None else f" (most: {largest[0].replace('_', ' ')} {largest[1]:.1f} s)"


def print_row(row: dict[str, Any]) -> None:
    codes = ", ".join(
        f"{code} x{row['exit_codes'].count(code)}" for code in sorted(set(row["exit_codes"]))
    )
    print(
        f"{row['scenario']} [{row['variant']}] {row['condition']}: passed "
        f"{row['passes']}/{row['runs']} (exit {codes}); closest: {_margin(row)}; "
        f"fixed cost {row['fixed_cost']:.1f} s per run{_largest(row)}"
        + (f"; breached: {'; '.join(row['breached'])}" if row["breached"] else ""),
        flush=True,
    )


def print_summary(rows: Sequence[dict[str, Any]]) -> None:
    print("\nscenario | variant | condition | passed | closest threshold (smallest margin) | "
          "fixed cost s")  # fmt: skip
    for row in rows:
        print(
            f"{row['scenario']} | {row['variant']} | {row['condition']} | "
            f"{row['passes']}/{row['runs']} | {_margin(row)} | {row['fixed_cost']:.1f}"
        )
    costs = [row["fixed_cost"] for row in rows]
    if costs:
        print(f"fixed cost per run: median {statistics.median(costs):.1f} s, "
              f"max {max(costs):.1f} s")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
