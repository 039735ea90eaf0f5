"""`make setup` on a machine without a system package: as root it installs it with the
machine's package manager, otherwise it stops once, naming the command to run, before it
sets up anything.

The machine keeps its packages: "without wrk" is a ``PATH`` stripped of it (every other
program of ``PATH`` linked into one folder). As root, the real ``apt-get`` is run: it finds
wrk installed already, and the setup then says that wrk is still not on ``PATH``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.packaging.tree import copy_of_tree

AS_ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def clone() -> Iterator[Path]:
    """A copy of the tree in a folder every user may read (the setup runs as nobody too)."""
    with tempfile.TemporaryDirectory(prefix="harness-setup-") as folder:
        os.chmod(folder, 0o755)
        yield copy_of_tree(Path(folder) / "harness")


@pytest.fixture(scope="module")
def path_without_wrk() -> Iterator[str]:
    """One folder linking every program of ``PATH`` but wrk, readable by every user."""
    with tempfile.TemporaryDirectory(prefix="harness-path-") as name:
        folder = Path(name)
        folder.chmod(0o755)
        for directory in os.environ["PATH"].split(os.pathsep):
            if not os.path.isdir(directory):
                continue
            for entry in os.scandir(directory):
                target = folder / entry.name
                if entry.name != "wrk" and not target.exists() and os.access(entry.path, os.X_OK):
                    target.symlink_to(entry.path)
        yield name


def make_setup(clone: Path, path: str, *user: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_PG", "MAKE"))}
    env["PATH"] = path
    command = ["make", "-C", str(clone), "setup"]
    if user:
        # a Python that user may run (root's own, e.g. pyenv's shims, it may not)
        python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
        command = ["runuser", "-u", user[0], "--", "env", f"PATH={path}", *command,
                   f"PYTHON={python}"]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_without_wrk_setup_installs_it_as_root_or_names_the_command(
    clone: Path, path_without_wrk: str
) -> None:
    assert shutil.which("wrk", path=path_without_wrk) is None
    done = make_setup(clone, path_without_wrk)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out  # wrk is on no PATH of this run, installed or not
    if AS_ROOT:
        assert "installing wrk with apt-get" in out, out
        assert "wrk is already the newest version" in out or "Setting up wrk" in out, out
        assert "wrk still cannot be found" in out, out
    else:
        assert "sudo apt-get install -y wrk" in out, out
    assert not (clone / ".venv").exists(), "the setup went on without wrk"


@pytest.mark.skipif(not AS_ROOT, reason="runs the setup as another user: needs root")
def test_a_user_who_is_not_root_is_told_the_command_once(
    clone: Path, path_without_wrk: str
) -> None:
    done = make_setup(clone, path_without_wrk, "nobody")
    assert done.returncode != 0
    assert done.stderr.count("sudo apt-get install -y wrk") == 1, done.stderr
    assert "missing system packages: wrk" in done.stderr
    assert not (clone / ".venv").exists()


def test_with_everything_present_the_step_is_silent(clone: Path) -> None:
    done = subprocess.run(
        ["make", "-s", "-C", str(clone), "system-packages"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
