"""`harness load`: check the request, run the load with a progress bar, report it."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from isolation_harness.chaos.errors import ConfigError
from isolation_harness.chaos.report.load_report import (
    stats_table,
    write_csv,
    write_html,
    write_json,
)
from isolation_harness.chaos.stack.lifecycle import Stack
from isolation_harness.chaos.stack.warden import Warden
from isolation_harness.load.kinds import parse_mix, parse_think_time
from isolation_harness.load.operations import outcome_counts
from isolation_harness.load.runner import LoadError, LoadPlan, LoadResult, run_load
from isolation_harness.load.seeding import parse_seed
from isolation_harness.topology.durations import parse_duration
from isolation_harness.topology.environment import ENV_PAYMENTS_URL, ENV_SEED, ENV_THINK_TIME

#: the load's variables `harness load` hands on to Locust as they are set in its environment,
#: checked first (its options take the admin token and the mix, and the samples are its own)
_HANDED_ON: dict[str, Callable[[str], object]] = {
    ENV_SEED: parse_seed,
    ENV_THINK_TIME: parse_think_time,
    ENV_PAYMENTS_URL: str,
}


@dataclass(frozen=True)
class LoadOptions:
    """What `harness load` was asked, as typed on the command line."""

    users: int
    spawn_rate: float | None
    duration: str
    mix: str
    workers: int
    host: str | None
    admin_token: str | None
    json_path: Path | None
    csv_prefix: str | None
    #: the HTML report (its timeline and percentiles); None: none
    report_path: Path | None = None


def run_load_command(
    stack: Stack,
    console: Console,
    options: LoadOptions,
    environ: Mapping[str, str] = os.environ,
) -> LoadResult:
    """Validate everything first (bad input: exit 4, nothing started), then run."""
    plan = _plan(stack, options, _handed_on(environ))
    json_path, csv_prefix = options.json_path, options.csv_prefix
    _probe(plan.host)
    console.print(
        f"load: {plan.users} users ({', '.join(f'{k}={w}' for k, w in plan.mix.items())}), "
        f"spawn rate {plan.spawn_rate:g}/s, {plan.duration:g} s, "
        f"{'local' if plan.workers == 0 else f'{plan.workers} workers'}, against {plan.host}"
    )
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[requests]} requests, {task.fields[rps]:.0f}/s"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("running", total=plan.duration, requests=0, rps=0.0)

        def tick(elapsed: float, count: int) -> None:
            progress.update(
                task,
                completed=min(elapsed, plan.duration),
                requests=count,
                rps=count / elapsed if elapsed > 0 else 0.0,
            )

        try:
            result = run_load(plan, tick, watch=Warden.start)
        except LoadError as exc:
            raise ConfigError(str(exc), "see the Locust logs in the samples folder") from exc
    console.print(stats_table(result.stats(), title=f"{len(result.samples)} requests"))
    counts = ", ".join(f"{n} {outcome}" for outcome, n in outcome_counts(result.operations).items())
    console.print(f"money-moving requests: {len(result.operations)} ({counts})")
    if result.saturated:
        console.print(
            "[yellow]warning[/yellow]: the load generator was CPU-bound (Locust's CPU warning): "
            "latencies include its own delay; add --workers or lower --users"
        )
    if json_path is not None:
        write_json(result, json_path)
        console.print(f"json: {json_path}")
    if csv_prefix is not None:
        for path in write_csv(result, csv_prefix):
            console.print(f"csv: {path}")
    if options.report_path is not None:
        write_html(result, options.report_path)
        console.print(f"report: {options.report_path}", soft_wrap=True, markup=False)
    return result


def _handed_on(environ: Mapping[str, str]) -> dict[str, str]:
    handed: dict[str, str] = {}
    for name, parse in _HANDED_ON.items():
        text = environ.get(name, "").strip()
        if not text:
            continue
        try:
            parse(text)
        except ValueError as exc:
            raise ConfigError(f"{name}={text!r}: {exc}", f"fix or unset {name}") from None
        handed[name] = text
    return handed


def _plan(stack: Stack, options: LoadOptions, extra_env: Mapping[str, str]) -> LoadPlan:
    host, admin_token = options.host, options.admin_token
    if host is None or admin_token is None:
        state = stack.load()
        if state is None or state.app is None:
            raise ConfigError(
                "no running stack to load, and no --host/--admin-token given",
                "start the stack with `harness up`, or pass --host and --admin-token",
            )
        host = host or state.app.url
        admin_token = admin_token or state.app.admin_token
    try:
        return LoadPlan(
            host=host.rstrip("/"),
            users=options.users,
            spawn_rate=(
                options.spawn_rate if options.spawn_rate is not None else float(options.users)
            ),
            duration=parse_duration(options.duration),
            mix=parse_mix(options.mix),
            admin_token=admin_token,
            workers=options.workers,
            extra_env=extra_env,
        )
    except (LoadError, ValueError) as exc:
        raise ConfigError(str(exc), "see `harness load --help`") from None


def _probe(host: str) -> None:
    try:
        with urllib.request.urlopen(f"{host}/health/live", timeout=3):  # noqa: S310
            return
    except urllib.error.HTTPError as exc:
        raise ConfigError(
            f"{host} answers /health/live with {exc.code}: is it the reference app?",
            "pass the app's URL with --host",
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ConfigError(
            f"host {host} is unreachable ({exc})", "start the stack or correct --host"
        ) from None
