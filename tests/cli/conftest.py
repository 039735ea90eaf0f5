"""What the command-line tests share: a running stack to point ``harness`` at."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugins import commands
from tests.plugins.pg_cluster import cluster_folder

HARNESS = str(Path(sys.executable).with_name("harness"))


@pytest.fixture
def stack_env() -> Iterator[dict[str, str]]:
    """The environment of a stack brought up by ``harness up`` (one app worker), taken down
    after the test."""
    with harness_stack_env() as env:
        yield env


@contextlib.contextmanager
def harness_stack_env() -> Iterator[dict[str, str]]:
    """The environment of a stack brought up by ``harness up`` (one app worker), taken down
    when the block ends."""
    folder = cluster_folder("harness-test-cli-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "TOXIPROXY_"))}
    env.update(HARNESS_STATE_DIR=str(folder), HARNESS_APP_WORKERS="1", PYTHONUNBUFFERED="1")
    up = commands.run([HARNESS, "up"], env=env, timeout=120)
    assert up.returncode == 0, up.stderr
    try:
        yield env
    finally:
        commands.run([HARNESS, "down"], env=env, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)
