"""`pytest -n 2` gives each worker its own cluster and Toxiproxy server, without clashes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.plugins import commands

ROOT = Path(__file__).resolve().parents[2]


def run_probe(out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the probe tests in a child `pytest -n 2` with the local components."""
    child_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_XDIST_", "HARNESS_", "TOXIPROXY_"))
    }
    child_env.update(env, WORKERS_PROBE_OUT=str(out))
    return commands.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-q", "-p", "no:cacheprovider",
         "tests/cli/workers_probe.py"],
        cwd=ROOT, env=child_env, timeout=300,
    )  # fmt: skip


def test_two_workers_use_their_own_components(tmp_path: Path) -> None:
    result = run_probe(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
    records = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*.json"))]
    assert len(records) == 4
    by_worker: dict[str, set[tuple[int, str]]] = {}
    for record in records:
        by_worker.setdefault(record["worker"], set()).add(
            (record["pg_port"], record["toxiproxy_url"])
        )
    assert set(by_worker) == {"gw0", "gw1"}, by_worker
    # One cluster and one server per worker, shared by that worker's tests…
    assert all(len(components) == 1 for components in by_worker.values())
    (pg0, tox0), (pg1, tox1) = (next(iter(c)) for c in by_worker.values())
    # …and none shared between workers.
    assert pg0 != pg1
    assert tox0 != tox1


def test_missing_component_stops_the_run_once_before_workers_start(tmp_path: Path) -> None:
    result = run_probe(tmp_path, HARNESS_PG_BIN=str(tmp_path / "no-such-bin"))
    assert result.returncode == 4, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert output.count("cannot run the suite: HARNESS_PG_BIN=") == 1, output
    assert "apt-get install postgresql" in output
    assert not list(tmp_path.glob("*.json")), "tests ran although the run was stopped"


def test_component_failing_in_workers_stops_the_run_with_its_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken-bin"
    broken.mkdir()
    for tool in ("initdb", "pg_ctl"):  # found, but fails when run
        (broken / tool).symlink_to("/bin/false")
    result = run_probe(tmp_path, HARNESS_PG_BIN=str(broken))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "INTERNALERROR" not in output
    assert "Interrupted: the test PostgreSQL cluster could not start: initdb failed" in output
    # At most the first test of each worker errors; the others do not run.
    errors = re.search(r"(\d+) errors? in", output)
    assert errors is not None, output
    assert int(errors[1]) <= 2, output
    assert not list(tmp_path.glob("*.json"))
