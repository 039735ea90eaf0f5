"""The ``harness`` command line.

Every harness or infrastructure error, including bad input, is printed as one line naming
the problem and the fix, and exits with code 4 (DESIGN §4).

*Why one module of this length:* it is the command line's surface, one click command per
``harness`` command with its options and help, so that ``harness --help`` and this file
read alike; the work of the longer commands is in :mod:`.runs`, :mod:`.load`,
:mod:`.demo` and :mod:`.replay`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import NoReturn

import click
from click.decorators import FC
from rich.console import Console
from rich.table import Table

from isolation_harness.chaos.errors import EXIT_HARNESS_ERROR, HarnessError
from isolation_harness.chaos.stack import toxiproxy_server
from isolation_harness.chaos.stack.lifecycle import ComponentStatus, Stack
from isolation_harness.chaos.stack.settings import Settings
from isolation_harness.chaos.stack.state import StackState
from isolation_harness.topology.environment import ENV_ADMIN_TOKEN, ENV_MIX
from isolation_harness.topology.services import VARIANTS

# Wider than rich's 80 columns when not on a terminal, so that logs stay readable.
_out = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
_err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 120)


def _settings(ctx: click.Context, **overrides: object) -> Settings:
    base: Settings = ctx.obj
    return base.with_overrides(**overrides)


def _report(message: str) -> None:
    _err.print(f"[dim]·[/dim] {message}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of the stack's state (default: $HARNESS_STATE_DIR or .harness).",
)
@click.pass_context
def cli(ctx: click.Context, state_dir: Path | None) -> None:
    """Resilience harness: start the stack, break parts of it, judge what clients saw."""
    ctx.obj = Settings.from_env(os.environ).with_overrides(state_dir=state_dir)


@cli.command()
@click.option("--pg-port", type=int, help="Port for PostgreSQL (default: a free one).")
@click.option("--toxiproxy-port", type=int, help="API port for Toxiproxy (default: a free one).")
@click.option("--app-port", type=int, help="Port for the reference app (default: a free one).")
@click.option("--workers", type=int, help="Worker processes of the app (default 2).")
@click.option(
    "--variant",
    type=click.Choice(VARIANTS),
    help="The app's design: isolated (default) or legacy (one shared pool).",
)
@click.pass_context
def up(
    ctx: click.Context,
    pg_port: int | None,
    toxiproxy_port: int | None,
    app_port: int | None,
    workers: int | None,
    variant: str | None,
) -> None:
    """Start PostgreSQL, Toxiproxy with one proxy per link, the provider fakes and the app."""
    settings = _settings(
        ctx,
        pg_port=pg_port,
        toxiproxy_port=toxiproxy_port,
        app_port=app_port,
        app_workers=workers,
        app_variant=variant,
    )
    stack = Stack(settings, _report)
    state, started = stack.up()
    if not started:
        _err.print("the stack is already running:")
    _print_state(state, stack.probe(state))
    _out.print(f"state: {stack.store.path}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the state and probes as JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Probe each component of the running stack; exit 4 if any required one is down."""
    stack = Stack(_settings(ctx))
    state = stack.load()
    if state is None:
        if as_json:
            _out.print_json(json.dumps({"running": False}))
        raise HarnessError("the stack is not running", "start it with `harness up`")
    probes = stack.probe(state)
    healthy = all(p.healthy for p in probes if p.required)
    if as_json:
        payload = {
            "running": True,
            "healthy": healthy,
            "state": json.loads(state.model_dump_json()),
            "components": [p.__dict__ for p in probes],
        }
        _out.print_json(json.dumps(payload))
    else:
        _print_state(state, probes)
    if not healthy:
        down = ", ".join(p.name for p in probes if p.required and not p.healthy)
        raise HarnessError(
            f"stack unhealthy: {down}",
            "see `harness status`; restart with `harness down && harness up`",
        )


@cli.command()
@click.pass_context
def down(ctx: click.Context) -> None:
    """Stop everything `up` started (also after `up` was killed) and remove the cluster."""
    stack = Stack(_settings(ctx), _report)
    if stack.down():
        _out.print("stack stopped")
    else:
        _out.print("nothing running")


@cli.command("install-toxiproxy")
@click.pass_context
def install_toxiproxy(ctx: click.Context) -> None:
    """Build Shopify's Toxiproxy server into the tool folder unless one is found."""
    settings = _settings(ctx)
    found = toxiproxy_server.find_binary(settings)
    if found is not None:
        _out.print(f"toxiproxy-server: {found.path} ({found.source})")
        return
    built = toxiproxy_server.build(settings.tools_dir)
    _out.print(f"toxiproxy-server: built {built.path}")


@cli.command()
@click.option("--link", default="pg_deposits", show_default=True, help="Link to cut.")
@click.option(
    "--cut", "cut_seconds", default=2.0, show_default=True, help="Seconds the link stays down."
)
@click.pass_context
def demo(ctx: click.Context, link: str, cut_seconds: float) -> None:
    """Start the stack, cut one link, show a client failing and recovering, stop the stack."""
    from isolation_harness.chaos.cli.demo import run_demo

    stack = Stack(_settings(ctx), _report)
    result = run_demo(stack, link=link, cut_seconds=cut_seconds, console=_out)
    sys.exit(result)


@cli.command()
@click.option("--users", type=int, default=20, show_default=True, help="Concurrent users.")
@click.option("--spawn-rate", type=float, help="Users started per second (default: all at once).")
@click.option("--duration", default="30s", show_default=True, help="e.g. 30s, 2m, 1m30s.")
@click.option(
    "--mix",
    default="deposits=6,wallet=2,p2p=1,swap=1",
    envvar=ENV_MIX,
    show_envvar=True,
    show_default=True,
    help="User kinds and weights: deposits, wallet, p2p, swap, express, admin, health.",
)
@click.option(
    "--workers",
    type=int,
    default=0,
    show_default=True,
    help="Locust worker processes under one master (0: one local process).",
)
@click.option("--host", help="The app's URL (default: the running stack's).")
@click.option(
    "--admin-token",
    envvar=ENV_ADMIN_TOKEN,
    show_envvar=True,
    help="The app's admin token (default: the running stack's).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the result as JSON.",
)
@click.option("--csv", "csv_prefix", help="Write PREFIX_stats.csv and PREFIX_samples.csv.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("reports/load/report.html"),
    show_default=True,
    help="Write the HTML report here (its timeline and percentiles).",
)
@click.option("--no-report", is_flag=True, help="Write no HTML report.")
@click.pass_context
def load(
    ctx: click.Context,
    users: int,
    spawn_rate: float | None,
    duration: str,
    mix: str,
    workers: int,
    host: str | None,
    admin_token: str | None,
    json_path: Path | None,
    csv_prefix: str | None,
    report_path: Path,
    no_report: bool,
) -> None:
    """Run Locust against the app, keep every sample, print exact figures per group."""
    from isolation_harness.chaos.cli.load import LoadOptions, run_load_command

    options = LoadOptions(
        users,
        spawn_rate,
        duration,
        mix,
        workers,
        host,
        admin_token,
        json_path,
        csv_prefix,
        None if no_report else report_path,
    )
    run_load_command(Stack(_settings(ctx)), _out, options)


_VARIANT = click.Choice(VARIANTS)
_REPORTS = click.option(
    "--reports",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="Folder for reports.",
)


def _count(name: str, text: str) -> Callable[[FC], FC]:
    """An option ``--name N``: a whole number of at least 1, 1 unless given."""
    return click.option(
        name, metavar="N", type=click.IntRange(min=1), default=1, show_default=True, help=text
    )


_REPEAT = _count(
    "--repeat",
    "Run each scenario N times: print the pass rate and each threshold's margins; "
    "exit with the worst run's code.",
)


@cli.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--variant", type=_VARIANT, help="Run against this design instead of the file's.")
@click.option(
    "--seed", type=int, help="Seed of every run (default: the file's, else a new one per run)."
)
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="JUnit XML path.")
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path), help="Journal path.")
@click.option(
    "--replay",
    "replayed",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Run a recorded run again from its journal: its scenario, seed and variant.",
)
@_REPORTS
@click.option(
    "--reuse",
    is_flag=True,
    help="Use the running stack (`harness up`) instead of a throw-away one.",
)
@_REPEAT
@click.pass_context
def run(
    ctx: click.Context,
    file: Path | None,
    variant: str | None,
    seed: int | None,
    junit: Path | None,
    journal: Path | None,
    replayed: Path | None,
    reports: Path,
    reuse: bool,
    repeat: int,
) -> None:
    """Run one scenario (or --replay a recorded run); exit 0 pass, 1 threshold, 2 invariant,
    3 invalid, 4 error."""
    from isolation_harness.chaos.cli.replay import replay_run
    from isolation_harness.chaos.cli.runs import run_files

    if replayed is not None:
        given = [name for name, value in (("FILE", file), ("--seed", seed), ("--variant", variant))
                 if value is not None]  # fmt: skip
        if given:
            raise click.UsageError(
                f"--replay runs the recorded scenario with its own seed and variant: "
                f"drop {', '.join(given)}", ctx,
            )  # fmt: skip
        code = replay_run(
            replayed, _settings(ctx), _out, reuse=reuse, reports=reports, junit=junit,
            journal=journal,
        )  # fmt: skip
        sys.exit(code)
    if file is None:
        raise click.UsageError("give a scenario FILE, or --replay JOURNAL", ctx)
    code = run_files(
        [file], _settings(ctx), _out, variant=variant, seed=seed, reuse=reuse,
        reports=reports, junit=junit, journal=journal, repeat=repeat,
    )  # fmt: skip
    sys.exit(code)


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--variant", type=_VARIANT, help="Run every scenario against this design.")
@click.option(
    "--seed", type=int, help="Seed of every run (default: the file's, else a new one per run)."
)
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    help="One JUnit XML file for the suite (default: REPORTS/junit.xml).",
)
@_REPORTS
@_REPEAT
@_count(
    "--jobs",
    "Run up to N scenarios at once, each on its own stack; longest first, each run's "
    "lines printed when it ends.",
)
@click.pass_context
def suite(
    ctx: click.Context,
    folder: Path,
    variant: str | None,
    seed: int | None,
    junit: Path | None,
    reports: Path,
    repeat: int,
    jobs: int,
) -> None:
    """Run every scenario of a folder (recursively); exit with the most serious result."""
    from isolation_harness.chaos.cli.runs import run_files, scenario_files

    code = run_files(
        scenario_files(folder), _settings(ctx), _out, variant=variant, seed=seed, reuse=False,
        reports=reports, junit=junit, repeat=repeat, jobs=jobs,
    )  # fmt: skip
    sys.exit(code)


@cli.command()
@click.argument("journals", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--index",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the suite index of these runs (index.html) into this folder.",
)
def report(journals: tuple[Path, ...], index: Path | None) -> None:
    """Render the HTML report of runs again: report.html beside each journal (a folder:
    every journal.json under it)."""
    from isolation_harness.chaos.cli.pages import report as write_reports

    sys.exit(write_reports(list(journals), _out, index=index))


@cli.command()
@click.argument("a", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("reports/compare.html"),
    show_default=True,
    help="Where to write the page.",
)
@click.option("--label-a", help="What to call run A (default: scenario, variant, start time).")
@click.option("--label-b", help="What to call run B.")
def compare(a: Path, b: Path, out: Path, label_a: str | None, label_b: str | None) -> None:
    """Two runs side by side (journals A and B): timelines overlaid, metric deltas (B - A)."""
    from isolation_harness.chaos.cli.pages import compare as write_compare

    sys.exit(write_compare(a, b, out, _out, labels=(label_a, label_b)))


@cli.command()
@click.argument("files", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))  # fmt: skip
def validate(files: tuple[Path, ...]) -> None:
    """Check scenario files without running them: each problem with file, line and field."""
    from isolation_harness.chaos.cli.runs import validate as validate_paths

    sys.exit(validate_paths(list(files), _out))


def _print_state(state: StackState, probes: Sequence[ComponentStatus]) -> None:
    table = Table(title="stack", title_justify="left")
    for column in ("component", "state", "address", "detail"):
        table.add_column(column)
    for probe in probes:
        mark = (
            "[green]up[/green]"
            if probe.healthy
            else ("[red]DOWN[/red]" if probe.required else "[yellow]idle[/yellow]")
        )
        table.add_row(probe.name, mark, probe.address, probe.detail)
    _out.print(table)
    if state.postgres is not None:
        _out.print(f"postgres dsn: {state.postgres.dsn}")
    if state.toxiproxy is not None:
        _out.print(f"toxiproxy url: {state.toxiproxy.url}")
    if state.app is not None:
        _out.print(f"app url: {state.app.url}  ({state.app.variant}, {state.app.workers} workers)")
        _out.print(f"admin token: {state.app.admin_token}")


def _terminate(signum: int, frame: FrameType | None) -> NoReturn:
    # SystemExit unwinds `finally` blocks, so whatever was started or injected is undone.
    raise SystemExit(128 + signum)


def _keep_traceback() -> str:
    """Write the exception being handled to a file; its path."""
    with tempfile.NamedTemporaryFile(
        "w", prefix="harness-crash-", suffix=".log", delete=False
    ) as handle:
        traceback.print_exc(file=handle)
        return handle.name


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the ``harness`` console script."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="harness",
            standalone_mode=False,
        )
    except HarnessError as exc:
        _err.print(f"harness: error: {exc}", soft_wrap=True, markup=False)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        # Bad command-line input is bad input like any other: one line, exit 4.
        _err.print(
            f"harness: error: {exc.format_message()} (see `harness --help`)",
            soft_wrap=True,
            markup=False,
        )
        sys.exit(EXIT_HARNESS_ERROR)
    except click.exceptions.Abort:
        _err.print("harness: interrupted", markup=False)
        sys.exit(130)
    except Exception as exc:  # a bug of the harness: one line and exit 4, never a verdict
        _err.print(
            f"harness: error: the harness crashed: {type(exc).__name__}: {exc} — a bug: "
            f"please report it with its traceback, kept in {_keep_traceback()}",
            soft_wrap=True,
            markup=False,
        )
        sys.exit(EXIT_HARNESS_ERROR)
    sys.exit(0)
