"""Where a running stack records itself: ``$HARNESS_STATE_DIR/stack.json``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from isolation_harness.topology.environment import ENV_STATE_DIR

DEFAULT_STATE_DIR = ".harness"
STATE_FILE = "stack.json"


def state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """``$HARNESS_STATE_DIR``, or ``.harness`` in the current folder."""
    return Path(environ.get(ENV_STATE_DIR) or DEFAULT_STATE_DIR)


def state_path(environ: Mapping[str, str] = os.environ) -> Path:
    """The state file of the stack that ``environ`` points at."""
    return state_dir(environ) / STATE_FILE
