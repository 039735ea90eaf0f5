"""`harness load` refuses bad input with one line and exit 4, before starting any Locust."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from isolation_harness.topology.ports import free_port
from tests.plugins import commands
from tests.plugins.polling import wait_until
from tests.plugins.processes import with_folder_in_environment
from tests.plugins.run_folders import assert_no_litter

HARNESS = str(Path(sys.executable).with_name("harness"))


def run(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    env["HARNESS_STATE_DIR"] = str(state_dir)
    return commands.run(
        [HARNESS, "load", *args], env=env, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--mix", "deposits=2,bots=1"], "unknown user kind 'bots'"),
        (["--users", "0"], "users must be at least 1"),
        (["--duration", "ten"], "malformed duration 'ten'"),
        (["--duration", "0s"], "must be positive"),
        (["--spawn-rate", "-1"], "spawn rate must be positive"),
        (["--workers", "-2"], "workers must be 0"),
        (["--users", "many"], "'many' is not a valid integer"),
    ],
    ids=["unknown-kind", "zero-users", "malformed-duration", "zero-duration",
         "negative-rate", "negative-workers", "users-not-a-number"],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_4(tmp_path: Path, args: list[str], fragment: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run(*args, "--host", url, "--admin-token", "t", state_dir=tmp_path)
    assert result.returncode == 4, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]
    assert not list(tmp_path.glob("**/samples-*.jsonl"))


def test_unreachable_host(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run("--host", url, "--admin-token", "t", state_dir=tmp_path)
    assert result.returncode == 4
    assert f"host {url} is unreachable" in result.stderr


def test_no_stack_and_no_host(tmp_path: Path) -> None:
    result = run(state_dir=tmp_path)
    assert result.returncode == 4
    assert "no running stack" in result.stderr
    assert "harness up" in result.stderr


def test_a_load_run_prints_its_table_and_writes_json_and_csv(tmp_path: Path) -> None:
    import json

    from tests.plugins.pg_cluster import cluster_folder

    state_dir = cluster_folder("harness-test-loadcli-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    env.update(HARNESS_STATE_DIR=str(state_dir), HARNESS_APP_WORKERS="1")
    try:
        up = commands.run([HARNESS, "up"], env=env, timeout=120)
        assert up.returncode == 0, up.stderr
        result = commands.run(
            [HARNESS, "load", "--users", "6", "--duration", "3s", "--mix", "deposits=2,wallet=1",
             "--json", str(tmp_path / "run.json"), "--csv", str(tmp_path / "run"),
             "--report", str(tmp_path / "load" / "report.html")],
            env=env, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert "deposits.create" in result.stdout
        assert "p99 ms" in result.stdout
        data = json.loads((tmp_path / "run.json").read_text())
        assert data["plan"]["users"] == 6
        assert data["groups"]["deposits.create"]["count"] > 0
        assert data["groups"]["*"]["failures"] == 0
        samples = (tmp_path / "run_samples.csv").read_text().splitlines()
        assert len(samples) - 1 == data["samples"]
        assert (tmp_path / "run_stats.csv").read_text().startswith("group,count")
        # the page: every request name's percentiles, a throughput line per service
        page = (tmp_path / "load" / "report.html").read_text()
        assert f"report: {tmp_path / 'load' / 'report.html'}" in result.stdout
        assert 'id="series-throughput-deposits"' in page
        assert 'id="series-throughput-wallet"' in page
        assert "<td>deposits.create</td>" in page
    finally:
        commands.run([HARNESS, "down"], env=env, timeout=120)
        import shutil

        shutil.rmtree(state_dir, ignore_errors=True)


def test_a_killed_load_run_leaves_no_locust_and_no_folder(
    stack_env: dict[str, str], temp_root: Path
) -> None:
    """`kill -9` of `harness load` mid-run: its warden stops the Locust processes and removes
    the samples folder (Locust would run out its 60 s, the folder stay)."""
    run = subprocess.Popen(
        [HARNESS, "load", "--users", "4", "--duration", "60s", "--mix", "wallet=1"],
        env={**stack_env, "TMPDIR": str(temp_root)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def locusts() -> list[int]:
        return [
            pid
            for pid in with_folder_in_environment("TMPDIR", temp_root)
            if b"locust" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]

    try:
        wait_until(locusts, timeout=60, interval=0.1)
        time.sleep(1)  # the users are at work
    finally:
        run.kill()
        run.wait()
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not with_folder_in_environment("TMPDIR", temp_root), timeout=30)
    assert not with_folder_in_environment("TMPDIR", temp_root), "a process of the load survived"
    assert_no_litter(temp_root)
