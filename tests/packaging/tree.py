"""The repository as a fresh clone has it: a copy of the working tree without what the
build, the set-up and the tests leave in it."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", ".tools", ".harness", "reports", "__pycache__", "*.egg-info", ".*_cache"
)


def copy_of_tree(target: Path) -> Path:
    """The working tree copied to ``target`` (links kept as links)."""
    shutil.copytree(ROOT, target, symlinks=True, ignore=NOT_COPIED)
    return target
