"""`harness demo`: a client through one link fails while the link is cut and recovers after.

The small show beside the scenarios: it starts the stack (unless it runs already), cuts one
PostgreSQL link with the runner's own :class:`~chaos.faults.LinkDown`, and shows a client
that keeps querying through it. The fault is reverted in ``finally``, also on Ctrl-C, and
the stack is checked for anything left behind (:func:`~chaos.faults.residue`) as after a run.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace

import aiohttp
import psycopg2
from rich.console import Console
from rich.table import Table

from isolation_harness.chaos.errors import (
    EXIT_INVALID,
    EXIT_INVARIANT,
    EXIT_PASS,
    EXIT_THRESHOLD,
    ConfigError,
    HarnessError,
)
from isolation_harness.chaos.faults import FaultContext, LinkDown, residue
from isolation_harness.chaos.stack import postgres
from isolation_harness.chaos.stack.lifecycle import Stack
from isolation_harness.chaos.stack.state import StackState
from isolation_harness.chaos.toxiproxy.client import ToxiproxyClient
from isolation_harness.topology.links import link_named
from isolation_harness.topology.ports import LOOPBACK

INTERVAL = 0.1
BASELINE_SECONDS = 1.0
RECOVERY_DEADLINE = 10.0
AFTER_RECOVERY_SECONDS = 1.0


@dataclass
class Attempt:
    """One query of the client."""

    at: float
    phase: str
    ok: bool
    latency_ms: float
    error: str = ""


@dataclass
class LinkClient:
    """A PostgreSQL client with one connection, reconnecting after a failure (like a pool)."""

    dsn: str
    conn: psycopg2.extensions.connection | None = None
    attempts: list[Attempt] = field(default_factory=list)

    def query(self, phase: str, started: float) -> Attempt:
        """Run ``SELECT 1``, reconnecting first if the last attempt broke the connection."""
        t0 = time.monotonic()
        try:
            if self.conn is None:
                self.conn = postgres.connect(self.dsn, timeout=1.0)
            with self.conn.cursor() as cur:
                cur.execute("SELECT 1")
            attempt = Attempt(t0 - started, phase, True, (time.monotonic() - t0) * 1000)
        except (HarnessError, psycopg2.Error) as exc:
            self.close()
            message = exc.problem if isinstance(exc, HarnessError) else str(exc)
            error = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
            attempt = Attempt(t0 - started, phase, False, (time.monotonic() - t0) * 1000, error)
        self.attempts.append(attempt)
        return attempt

    def close(self) -> None:
        """Drop the connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def run_demo(stack: Stack, *, link: str, cut_seconds: float, console: Console) -> int:
    """Run the demonstration; return the exit code (0 when the client failed and recovered)."""
    try:
        target = link_named(link)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0]), "pass one of the names listed with --link") from None
    if target.target != "postgres":
        raise ConfigError(
            f"link {link} does not lead to PostgreSQL", "pass a pg_* link, e.g. --link pg_p2p"
        )
    if cut_seconds <= 0:
        raise ConfigError(f"--cut {cut_seconds:g}: must be positive", "pass e.g. --cut 2")
    state, started = stack.up()
    try:
        return _show(state, link, cut_seconds, console)
    finally:
        if started:
            stack.down()
            console.print("stack stopped")


def _show(state: StackState, link: str, cut_seconds: float, console: Console) -> int:
    return asyncio.run(_show_with_fault(state, link, cut_seconds, console))


async def _show_with_fault(
    state: StackState, link: str, cut_seconds: float, console: Console
) -> int:
    """The show, with the link cut by the runner's own :class:`LinkDown`: reverted in
    ``finally`` (Ctrl-C too), and the stack checked for anything left behind after it."""
    assert state.postgres is not None
    assert state.toxiproxy is not None
    port = state.links[link].listen_port
    user = psycopg2.extensions.parse_dsn(state.postgres.dsn).get("user", postgres.SUPERUSER)
    client = LinkClient(f"host={LOOPBACK} port={port} user={user} dbname=postgres")
    console.print(
        f"\nA client queries PostgreSQL through link [bold]{link}[/bold] "
        f"({LOOPBACK}:{port}) every {INTERVAL * 1000:.0f} ms.\n"
    )
    async with ToxiproxyClient(state.toxiproxy.url) as toxiproxy, aiohttp.ClientSession() as http:
        # The client is the demo's own and goes through the link itself, whatever the app's
        # design: a legacy app does not make this link carry nothing.
        ctx = replace(FaultContext.from_stack(state, toxiproxy, http), variant="isolated")
        cut = LinkDown(link=link)
        started = time.monotonic()
        try:
            await asyncio.to_thread(
                _run_phase, client, "baseline", BASELINE_SECONDS, started, console
            )
            console.print(
                f"[bold red]>>> {cut.describe(ctx)} (Toxiproxy: proxy disabled)[/bold red]"
            )
            await cut.apply(ctx)
            await asyncio.to_thread(_run_phase, client, "cut", cut_seconds, started, console)
        finally:
            await asyncio.shield(cut.revert(ctx))
        restored = time.monotonic()
        left = await residue(ctx)
        if left:
            for line in left:
                console.print(f"[red]left behind[/red]: {line}")
            console.print("[red]FAIL[/red]: the stack was not as before once the link was restored")
            return EXIT_INVARIANT
    console.print(f"[bold green]>>> link {link} restored[/bold green]")
    recovered_after = await asyncio.to_thread(_recover, client, started, restored, console)
    client.close()
    return _summarise(client.attempts, recovered_after, console)


def _recover(client: LinkClient, started: float, restored: float, console: Console) -> float | None:
    """Seconds from the link's restoring to the client's first success (None: none within
    :data:`RECOVERY_DEADLINE`), then a last phase of queries."""
    recovered_after: float | None = None
    deadline = restored + RECOVERY_DEADLINE
    while time.monotonic() < deadline:
        attempt = _tick(client, "recovery", started, console)
        if attempt.ok:
            recovered_after = started + attempt.at + attempt.latency_ms / 1000 - restored
            break
    _run_phase(client, "recovered", AFTER_RECOVERY_SECONDS, started, console)
    return recovered_after


def _run_phase(
    client: LinkClient, phase: str, seconds: float, started: float, console: Console
) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        _tick(client, phase, started, console)


def _tick(client: LinkClient, phase: str, started: float, console: Console) -> Attempt:
    t0 = time.monotonic()
    attempt = client.query(phase, started)
    result = (
        f"[green]ok[/green]   {attempt.latency_ms:7.1f} ms"
        if attempt.ok
        else f"[red]FAIL[/red] {attempt.latency_ms:7.1f} ms  {attempt.error}"
    )
    console.print(f"  +{attempt.at:5.2f}s  {phase:<9}  {result}")
    time.sleep(max(0.0, INTERVAL - (time.monotonic() - t0)))
    return attempt


def _summarise(attempts: list[Attempt], recovered_after: float | None, console: Console) -> int:
    table = Table(title="summary", title_justify="left")
    for column in ("phase", "queries", "ok", "failed", "first error"):
        table.add_column(column)
    phases = ["baseline", "cut", "recovery", "recovered"]
    by_phase = {p: [a for a in attempts if a.phase == p] for p in phases}
    for phase in phases:
        rows = by_phase[phase]
        failed = [a for a in rows if not a.ok]
        table.add_row(
            phase,
            str(len(rows)),
            str(len(rows) - len(failed)),
            str(len(failed)),
            failed[0].error if failed else "",
        )
    console.print(table)
    cut_failures = sum(not a.ok for a in by_phase["cut"])
    if not by_phase["baseline"] or not all(a.ok for a in by_phase["baseline"]):
        console.print("[yellow]INVALID[/yellow]: the client failed before the link was cut")
        return EXIT_INVALID
    if cut_failures == 0:
        console.print("[yellow]INVALID[/yellow]: cutting the link had no effect on the client")
        return EXIT_INVALID
    if recovered_after is None or not all(a.ok for a in by_phase["recovered"]):
        console.print(f"[red]FAIL[/red]: the client did not recover within {RECOVERY_DEADLINE:g} s")
        return EXIT_THRESHOLD
    console.print(
        f"[green]PASS[/green]: the client failed while the link was cut "
        f"({cut_failures} failed queries) and recovered {recovered_after * 1000:.0f} ms after it "
        "was restored"
    )
    return EXIT_PASS
