"""Checks, once per run and before any worker starts, that the real components can be had.

A missing binary stops the run here with one clear message (exit 4) instead of failing
every test that needs it. The Toxiproxy server is built here if needed, so that parallel
workers never race to build it.

Started in the background of a script (``make test &``, ``nohup``), the suite ignores
SIGINT, and so would every command it starts: a test that presses Ctrl-C for a command
(``harness down`` finishing its stop, then exiting 130) would test an ignored signal. Each
process of the suite answers SIGINT as from a terminal, and so do the commands it starts.
"""

from __future__ import annotations

import os
import signal
from typing import NoReturn

import pytest

from isolation_harness.chaos.errors import HarnessError
from isolation_harness.chaos.stack.postgres import find_bin_dir
from isolation_harness.chaos.stack.settings import Settings
from isolation_harness.chaos.stack.toxiproxy_server import ensure_binary


def test_settings() -> Settings:
    """The stack settings for tests, from the environment (typos stop the run)."""
    return Settings.from_env(os.environ)


test_settings.__test__ = False  # type: ignore[attr-defined]


def pytest_configure(config: pytest.Config) -> None:
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if hasattr(config, "workerinput"):
        return  # an xdist worker: the controller has checked already
    try:
        settings = test_settings()
        if settings.pg_dsn is None:
            find_bin_dir(settings.pg_bin)
        if settings.toxiproxy_url is None:
            ensure_binary(settings)
    except HarnessError as exc:
        pytest.exit(f"cannot run the suite: {exc}", returncode=4)


def stop_run(request: pytest.FixtureRequest, what: str, exc: HarnessError) -> NoReturn:
    """Stop the whole run (all workers) with one message when a component cannot start.

    ``pytest.exit`` inside an xdist worker crashes the controller; ``shouldstop`` is the way
    a worker asks it to stop: the test at hand errors with the message, no other one runs.
    """
    message = f"{what} could not start: {exc}"
    request.session.shouldstop = message
    pytest.fail(message, pytrace=False)
