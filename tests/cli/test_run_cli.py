"""`harness run` as a user runs it: interrupted mid-fault or killed, it leaves nothing behind."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from isolation_harness.chaos.cli import commands as cli
from isolation_harness.chaos.cli import runs as scenario_command
from isolation_harness.chaos.errors import EXIT_HARNESS_ERROR
from isolation_harness.chaos.stack.state import StackState
from tests.plugins import commands
from tests.plugins.polling import wait_until
from tests.plugins.processes import descendants, with_folder_in_environment
from tests.plugins.run_folders import assert_no_litter, postmaster, running_stack

ROOT = Path(__file__).resolve().parents[2]
HARNESS = str(Path(sys.executable).with_name("harness"))


def get_json(url: str, token: str | None = None) -> object:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def test_sigint_mid_fault_reverts_everything_and_stops_its_processes(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    run = subprocess.Popen(
        [HARNESS, "run", "--reuse", str(ROOT / "tests/data/runs/sigint.yaml"),
         "--reports", str(tmp_path)],
        env=stack_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert run.stdout is not None
    applied, lines = 0, []
    deadline = time.monotonic() + 90
    while applied < 3 and time.monotonic() < deadline:
        line = run.stdout.readline()
        if not line:
            break
        lines.append(line)
        applied += "applied:" in line
    assert applied == 3, "".join(lines)
    spawned = descendants(run.pid)
    assert any("locust" in Path(f"/proc/{p.pid}/cmdline").read_text() for p in spawned)

    run.send_signal(signal.SIGINT)
    out, _ = run.communicate(timeout=90)
    assert run.returncode == 4, "".join(lines) + out
    assert "interrupted" in out
    assert not [p.pid for p in spawned if p.alive()], "a process of the run survived"

    state = StackState.model_validate_json(
        (Path(stack_env["HARNESS_STATE_DIR"]) / "stack.json").read_text()
    )
    assert state.toxiproxy is not None
    assert state.app is not None
    proxies = get_json(f"{state.toxiproxy.url}/proxies")
    assert isinstance(proxies, dict)
    assert all(p["enabled"] for p in proxies.values()), proxies
    assert all(not p["toxics"] for p in proxies.values()), proxies
    faults = get_json(f"{state.app.url}/api/_faults", state.app.admin_token)
    assert isinstance(faults, dict)
    assert all(f["mode"] == "none" for f in faults["faults"].values()), faults
    journal = json.loads(next(tmp_path.glob("*/journal.json")).read_text())
    assert journal["interrupted"] is True
    assert journal["exit_code"] == 4


DATA = ROOT / "tests" / "data" / "scenarios"


@pytest.mark.light
@pytest.mark.parametrize(
    ("name", "line", "field"),
    [
        ("missing_field", 2, "load.users: required field is missing"),
        ("unknown_fault_type", 11, "timeline[1].faults[1].type: unknown fault type 'link_cut'"),
        ("bad_threshold", 10, 'thresholds["deposits.*"].baseline[1]: threshold'),
        ("negative_duration", 5, "timeline[0].duration: duration '-5s' must be positive"),
        ("unknown_service", 9, "timeline[1].faults[0].service: unknown service 'billing'"),
        ("unknown_link", 10, "timeline[1].faults[0].link: unknown link 'pg_p2q'"),
    ],
)
def test_malformed_scenario_is_exit_4_with_file_line_and_field(
    tmp_path: Path, name: str, line: int, field: str
) -> None:
    path = DATA / f"{name}.yaml"
    for command in (["run", str(path), "--reports", str(tmp_path)], ["validate", str(path)]):
        result = commands.run(
            [HARNESS, *command], timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")},
        )  # fmt: skip
        assert result.returncode == 4, result.stdout + result.stderr
        assert f"{path}:{line}: {field}" in result.stdout + result.stderr
    assert not list(tmp_path.iterdir()), "nothing may run for a malformed file"


@pytest.mark.light
def test_suite_refuses_to_start_when_one_file_is_malformed(tmp_path: Path) -> None:
    folder = tmp_path / "gate"
    folder.mkdir()
    shutil.copy(ROOT / "scenarios" / "deposits-survive-p2p-outage.yaml", folder)
    shutil.copytree(ROOT / "scenarios" / "legacy", folder / "legacy")  # its counterpart
    shutil.copy(DATA / "unknown_link.yaml", folder)
    result = commands.run(
        [HARNESS, "suite", str(folder), "--reports", str(tmp_path / "reports")], timeout=60,
    )  # fmt: skip
    assert result.returncode == 4
    assert "unknown_link.yaml:10" in result.stderr
    assert not (tmp_path / "reports").exists()


@pytest.mark.light
def test_a_crash_of_the_harness_is_one_line_and_exit_4(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A bug of the harness is never a verdict (exit 1): one line, exit 4, and the
    traceback kept for the report."""

    def broken(*_: object) -> list[object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(scenario_command, "validate_files", broken)
    with pytest.raises(SystemExit) as exited:
        cli.main(["validate", str(tmp_path / "any.yaml")])
    assert exited.value.code == EXIT_HARNESS_ERROR
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("harness: error: the harness crashed: RuntimeError: boom")
    kept = Path(line.rsplit(" ", 1)[-1])
    assert "RuntimeError: boom" in kept.read_text()
    kept.unlink()


@pytest.mark.light
@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--replay", "j.json", "x.yaml"], "seed and variant: drop FILE"),
        (["--replay", "j.json", "--seed", "3", "--variant", "legacy"], "drop --seed, --variant"),
        ([], "give a scenario FILE, or --replay JOURNAL"),
    ],
    ids=["file", "seed-and-variant", "nothing"],
)
def test_replay_takes_no_file_seed_or_variant(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], problem: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", *args, "--reports", str(tmp_path / "reports")])
    assert exited.value.code == EXIT_HARNESS_ERROR
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("harness: error: ")
    assert problem in line
    assert not (tmp_path / "reports").exists()


@pytest.mark.light
def test_replaying_what_is_not_a_journal_names_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text("<testsuites/>")
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "--replay", str(junit), "--reports", str(tmp_path / "reports")])
    assert exited.value.code == EXIT_HARNESS_ERROR
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"harness: error: {junit} is not a harness journal — pass the")
    assert not (tmp_path / "reports").exists()


REPLAYED = """\
name: replayed
description: A short run, to be replayed.
load: {users: 4, spawn_rate: 4, mix: {deposits: 1, wallet: 1}, think_time: [0s, 50ms]}
timeline:
  - {phase: baseline, duration: 2s}
thresholds: none
invariants: none
"""


def test_a_run_replays_from_its_journal_with_its_scenario_seed_and_variant(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    """``harness run --replay`` reruns what the journal recorded, even after the file
    changed, and keeps the original's reports."""
    scenario = tmp_path / "replayed.yaml"
    scenario.write_text(REPLAYED)
    reports = tmp_path / "reports"

    def harness(*args: str) -> subprocess.CompletedProcess[str]:
        return commands.run(
            [HARNESS, "run", *args, "--reuse", "--reports", str(reports)], env=stack_env,
            timeout=120,
        )  # fmt: skip

    first = harness(str(scenario), "--seed", "1234")
    assert first.returncode == 0, first.stdout + first.stderr
    journal = reports / "replayed-isolated" / "journal.json"
    assert f"replay: harness run --replay {journal}" in first.stdout
    recorded = json.loads(journal.read_text())
    assert recorded["replay"] == f"harness run --replay {journal}"

    scenario.write_text(REPLAYED.replace("users: 4,", "users: 6,"))
    again = harness("--replay", str(journal))
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"note: {scenario} changed since the run; replaying the scenario as {journal}" in (
        again.stdout
    )
    replayed = json.loads((reports / "replayed-isolated-replay" / "journal.json").read_text())
    assert (replayed["seed"], replayed["variant"]) == (1234, "isolated")
    assert replayed["scenario"] == recorded["scenario"]
    assert replayed["scenario"]["load"]["users"] == 4
    assert replayed["source"] == str(scenario)
    assert replayed["load"]["samples"] > 0
    assert json.loads(journal.read_text()) == recorded  # the original's reports are kept


LONG_RUN = """\
name: killed
description: A long scenario, for the harness to be killed in the middle of.
load: {users: 4, spawn_rate: 4, mix: {deposits: 1, wallet: 1}}
timeline:
  - {phase: baseline, duration: 60s}
thresholds: none
invariants: none
"""


def start_long_run(tmp_path: Path, temp_root: Path, stdout: int) -> subprocess.Popen[str]:
    """`harness run` of :data:`LONG_RUN` on its own stack, its folders in ``temp_root``."""
    scenario = tmp_path / "long.yaml"
    scenario.write_text(LONG_RUN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    return subprocess.Popen(
        [HARNESS, "run", str(scenario), "--reports", str(tmp_path / "reports")],
        env={**env, "HARNESS_APP_WORKERS": "1", "TMPDIR": str(temp_root)},
        stdout=stdout, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_a_killed_run_leaves_no_process_and_no_folder(tmp_path: Path, temp_root: Path) -> None:
    """`kill -9` of `harness run` mid-load (a CI job's time limit, the OOM killer): the run
    cannot clean up, so its warden stops PostgreSQL, Toxiproxy, the app, the fakes and Locust,
    and removes the run's folders."""
    run = start_long_run(tmp_path, temp_root, stdout=subprocess.DEVNULL)
    try:
        state = wait_until(lambda: running_stack(temp_root), timeout=90, interval=0.2)
        wait_until(lambda: list(temp_root.glob("harness-load-*")), timeout=60, interval=0.2)
        time.sleep(1)  # the load is running
        spawned = [*descendants(run.pid), postmaster(state)]
        commands_of = [Path(f"/proc/{p.pid}/cmdline").read_bytes() for p in spawned]
        assert any(b"locust" in c for c in commands_of)
        assert any(b"warden" in c for c in commands_of)
    finally:
        run.kill()
        run.wait()
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not [p for p in spawned if p.alive()], timeout=60, interval=0.2)
    assert not [p.pid for p in spawned if p.alive()], "a process of the run survived"
    assert_no_litter(temp_root)


def test_ctrl_c_while_the_stack_starts_leaves_nothing_running(
    tmp_path: Path, temp_root: Path
) -> None:
    """Ctrl-C while the run's stack waits for its app to be ready: the start, which runs in a
    thread and cannot be cut, goes on, and what it started is stopped once it ends. The run
    used to stop waiting for it at once, and leave the app, the fakes and Toxiproxy running
    (seen under xdist on a busy machine, where an app takes seconds to be ready)."""
    run = start_long_run(tmp_path, temp_root, stdout=subprocess.PIPE)
    try:
        # the app is started, and the start waits for it to be ready
        wait_until(lambda: running_stack(temp_root), timeout=90, interval=0.005)
        run.send_signal(signal.SIGINT)
        out, _ = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == EXIT_HARNESS_ERROR, out
    assert "interrupted" in out
    # an app worker may outlive its server by a moment
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not with_folder_in_environment("TMPDIR", temp_root), timeout=10)
    assert not with_folder_in_environment("TMPDIR", temp_root), out
    assert_no_litter(temp_root)
