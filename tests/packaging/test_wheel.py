"""The harness installs beside anything: its wheel holds the one import name
``isolation_harness``, never a top-level ``chaos`` or ``load`` (PyPI has unrelated packages
of both names), and PyPI's ``load`` installed in the same environment still imports as
itself while every part of the harness imports too.

The wheel is built from a copy of the working tree (the build writes into its source folder)
with the project's own pinned build backend, and installed with its dependencies into a fresh
virtualenv by uv (from its cache, or the package index the machine is allowed to reach).
"""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.packaging.tree import copy_of_tree

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".venv" / "bin" / "uv"
#: PyPI's ``load`` ("Modern alternative to Python import"): a top-level ``load`` package
PYPI_LOAD = "load==1.0.14"


def run(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = copy_of_tree(tmp_path_factory.mktemp("source") / "harness")
    out = tmp_path_factory.mktemp("dist")
    run(UV, "build", "--wheel", "--quiet", "--out-dir", out, source)
    (built,) = out.glob("*.whl")
    return built


def top_level(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name.split("/", 1)[0] for name in archive.namelist()}


def test_the_wheel_installs_one_import_name_and_its_migrations(wheel: Path) -> None:
    names = top_level(wheel)
    assert {n for n in names if not n.endswith(".dist-info")} == {"isolation_harness"}, names
    with zipfile.ZipFile(wheel) as archive:
        sql = {n for n in archive.namelist() if n.endswith(".sql")}
        packaged = {n.removeprefix("isolation_harness/") for n in archive.namelist()}
    shipped = {
        str(p.relative_to(ROOT)) for p in (ROOT / "reference_app" / "migrations").rglob("*.sql")
    }
    assert {n.removeprefix("isolation_harness/") for n in sql} == shipped
    modules = {
        str(p.relative_to(ROOT))
        for folder in ("chaos", "load", "reference_app", "topology")
        for p in (ROOT / folder).rglob("*.py")
    }
    assert modules <= packaged, sorted(modules - packaged)


def test_pypi_load_and_the_harness_import_side_by_side(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run(UV, "venv", "--quiet", "--python", ROOT / ".venv" / "bin" / "python", venv)
    python = venv / "bin" / "python"
    run(UV, "pip", "install", "--quiet", "--python", python, PYPI_LOAD, wheel)
    found = json.loads(
        run(
            python,
            "-c",
            "import base64, hashlib, json, importlib.metadata as m, importlib.resources as r\n"
            "import load\n"
            "def intact(f):  # the file is still the one its distribution installed\n"
            "    digest = hashlib.sha256(f.read_binary()).digest()\n"
            "    return base64.urlsafe_b64encode(digest).rstrip(b'=').decode() == f.hash.value\n"
            "import isolation_harness.chaos.cli, isolation_harness.load.runner\n"
            "import isolation_harness.reference_app.app, isolation_harness.topology\n"
            "wallet = r.files('isolation_harness.reference_app.migrations') / 'wallet'\n"
            "print(json.dumps({'load': load.__file__,\n"
            "  'load_files': [str(f.locate()) for f in m.files('load')],\n"
            "  'changed': [str(f) for d in ('load', 'isolation-harness') for f in m.files(d)\n"
            "              if f.hash and not intact(f)],\n"
            "  'runner': isolation_harness.load.runner.__file__,\n"
            "  'migrations': sorted(p.name for p in wallet.iterdir())}))",
            cwd=tmp_path,  # not the repository: nothing of it on sys.path
        )
    )
    assert found["load"] in found["load_files"], found  # PyPI's, not the harness's load/
    assert found["changed"] == [], "one install overwrote the other's files"
    assert found["runner"].startswith(str(venv)), found
    assert "001_init.sql" in found["migrations"], found
    assert "harness" in run(venv / "bin" / "harness", "--help", cwd=tmp_path)
