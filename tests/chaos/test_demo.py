"""`harness demo` cuts its link with the runner's own fault, and checks what it leaves."""

from __future__ import annotations

import shutil

import pytest
from rich.console import Console

from isolation_harness.chaos.cli.demo import run_demo
from isolation_harness.chaos.errors import EXIT_INVARIANT
from isolation_harness.chaos.faults import FaultContext, LinkDown
from isolation_harness.chaos.stack.lifecycle import Stack
from tests.plugins.pg_cluster import cluster_folder
from tests.plugins.preflight import test_settings


def test_a_cut_the_demo_did_not_mend_is_reported_and_fails_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A broken revert: the residue check, as after a run, finds the proxy still disabled."""

    async def forgets(self: LinkDown, ctx: FaultContext) -> None:
        return None

    monkeypatch.setattr(LinkDown, "revert", forgets)
    folder = cluster_folder("harness-test-demo-")
    stack = Stack(test_settings().with_overrides(state_dir=folder, app_workers=1))
    console = Console(record=True, width=200)
    try:
        code = run_demo(stack, link="pg_wallet", cut_seconds=0.5, console=console)
    finally:
        stack.down()
        shutil.rmtree(folder, ignore_errors=True)
    out = console.export_text()
    assert code == EXIT_INVARIANT, out
    assert "left behind: link pg_wallet: proxy pg_wallet is disabled" in out
    assert "FAIL: the stack was not as before once the link was restored" in out
