"""`harness up | status | down | demo` as a user runs them: real processes, real ports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from isolation_harness.chaos.stack import postgres
from isolation_harness.chaos.stack.lifecycle import Stack
from isolation_harness.chaos.stack.process import ProcessRecord, children_of
from isolation_harness.chaos.stack.settings import Settings
from isolation_harness.chaos.stack.state import StackState
from isolation_harness.reference_app.settings import SERVICES
from isolation_harness.topology.services import LEGACY_ROLE, role_of
from tests.plugins import commands
from tests.plugins.pg_cluster import PostgresServer, cluster_folder

HARNESS = str(Path(sys.executable).with_name("harness"))
EXIT_HARNESS_ERROR = 4


@dataclass
class Harness:
    """Runs the `harness` command with a state folder of its own."""

    state_dir: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
        return commands.run(
            [HARNESS, *args],
            env={**self.env, **env},
            timeout=timeout,
        )

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [HARNESS, *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_for_toxiproxy_record(self, timeout: float = 60) -> StackState | None:
        """Poll the state file until `up` has recorded the Toxiproxy process."""
        deadline = time.monotonic() + timeout
        state = self.state()
        while (state is None or state.toxiproxy is None) and time.monotonic() < deadline:
            time.sleep(0.01)
            state = self.state()
        return state

    def state(self) -> StackState | None:
        path = self.state_dir / "stack.json"
        try:
            return StackState.model_validate_json(path.read_text())
        except (FileNotFoundError, ValueError):
            return None


@pytest.fixture
def harness() -> Iterator[Harness]:
    state_dir = cluster_folder("harness-test-cli-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "TOXIPROXY_"))}
    env["HARNESS_STATE_DIR"] = str(state_dir)
    h = Harness(state_dir, env)
    try:
        yield h
    finally:
        # a command that stopped at its input wrote nothing: no `harness down` to pay for
        if state_dir.exists() and any(state_dir.iterdir()):
            commands.run([HARNESS, "down"], env=env, timeout=120)
        shutil.rmtree(state_dir, ignore_errors=True)


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def ours_listening(ports: list[int], state_dir: Path, known: list[ProcessRecord]) -> list[int]:
    """The ports among ``ports`` a process of the stopped stack still listens on: one of
    ``known``, or one whose command line names the stack's folder (an app worker forked by
    the app's server). Another test's server that took a freed port since is not one."""
    pids = {proc.pid for proc in known}
    left = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status != psutil.CONN_LISTEN or not conn.laddr or conn.laddr.port not in ports:
            continue
        if conn.pid is None:  # not ours to inspect (not root): count it
            left.append(conn.laddr.port)
            continue
        try:
            command = " ".join(psutil.Process(conn.pid).cmdline())
        except psutil.Error:
            continue  # gone meanwhile
        if conn.pid in pids or str(state_dir) in command:
            left.append(conn.laddr.port)
    return left


def ports_of(state: StackState) -> list[int]:
    assert state.postgres is not None
    assert state.toxiproxy is not None
    assert state.toxiproxy.port is not None
    assert state.app is not None
    return [
        state.postgres.port,
        state.toxiproxy.port,
        state.app.port,
        *state.fake_ports.values(),
        *(link.listen_port for link in state.links.values()),
    ]


def processes_of(state: StackState, app_workers: int = 2) -> list[ProcessRecord]:
    assert state.toxiproxy is not None
    assert state.toxiproxy.process is not None
    assert state.postgres is not None
    assert state.postgres.data_dir is not None
    pid_file = state.postgres.data_dir / "postmaster.pid"
    postmaster = ProcessRecord.of(int(pid_file.read_text().split()[0]))
    backend = [p.record() for p in state.processes.values()]
    assert {"app", "payments_fake", "prices_fake"} == set(state.processes)
    workers = [ProcessRecord.of(pid) for pid in children_of(state.processes["app"].pid)]
    assert len(workers) >= app_workers
    return [state.toxiproxy.process.record(), postmaster, *backend, *workers]


def assert_error_line(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == EXIT_HARNESS_ERROR, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("harness: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_up_status_down_lifecycle(harness: Harness) -> None:
    result = harness.run("up")
    assert result.returncode == 0, result.stderr
    state = harness.state()
    assert state is not None
    assert set(state.links) == {
        "pg_deposits", "pg_wallet", "pg_p2p", "pg_swap", "pg_express", "pg_admin",
        "pg_background", "pg_shared", "payments", "prices",
    }  # fmt: skip
    ports = ports_of(state)
    processes = processes_of(state)
    assert all(listening(port) for port in ports)
    assert all(proc.alive() for proc in processes)
    assert "pg_p2p" in result.stdout
    assert state.postgres is not None
    assert f"port={state.postgres.port}" in result.stdout
    # fsync off (the default): the cluster is in RAM when the machine has room there
    assert state.postgres.data_dir is not None
    in_ram = state.postgres.data_dir.is_relative_to(postgres.RAM_ROOT)
    assert in_ram == postgres._has_room(postgres.RAM_ROOT), state.postgres.data_dir
    # the isolated design's database has no role reaching every service's data
    conn = postgres.connect(state.postgres.dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT rolname FROM pg_roles WHERE rolname = %s", (LEGACY_ROLE,))
            assert cur.fetchall() == [], "the legacy design's role is there"
            cur.execute("SELECT count(*) FROM pg_roles WHERE rolname = ANY(%s)",
                        ([role_of(s) for s in SERVICES],))  # fmt: skip
            assert cur.fetchone() == (len(SERVICES),)
    finally:
        conn.close()

    status = harness.run("status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["healthy"] is True
    by_name = {c["name"]: c for c in report["components"]}
    assert by_name["postgres"]["healthy"]
    assert by_name["link pg_p2p"]["healthy"]

    again = harness.run("up")
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stderr
    assert harness.state() == state, "a second `up` started the stack again"

    down = harness.run("down")
    assert down.returncode == 0, down.stderr
    assert "stack stopped" in down.stdout
    assert not any(proc.alive() for proc in processes)
    assert not ours_listening(ports, harness.state_dir, processes)
    assert harness.state() is None
    assert not state.postgres.data_dir.exists()
    assert not state.postgres.data_dir.parent.exists() or not in_ram  # its RAM folder too

    nothing = harness.run("down")
    assert nothing.returncode == 0
    assert "nothing running" in nothing.stdout
    assert_error_line(harness.run("status"), "not running", "harness up")


def test_status_reports_a_cut_link(harness: Harness) -> None:
    assert harness.run("up").returncode == 0
    state = harness.state()
    assert state is not None
    assert state.toxiproxy is not None
    cut = urllib.request.Request(
        f"{state.toxiproxy.url}/proxies/pg_wallet", data=b'{"enabled": false}', method="PATCH"
    )
    urllib.request.urlopen(cut, timeout=5).close()
    status = harness.run("status")
    assert status.returncode == EXIT_HARNESS_ERROR
    assert "link pg_wallet" in status.stderr
    assert "DISABLED" in status.stdout


def test_down_after_up_was_killed(harness: Harness) -> None:
    up = harness.spawn("up")
    state = harness.wait_for_toxiproxy_record()
    up.kill()
    up.communicate()
    state = harness.state()
    assert state is not None
    assert state.toxiproxy is not None, "up never got to start Toxiproxy"
    assert state.toxiproxy.process is not None
    toxiproxy_process = state.toxiproxy.process.record()
    assert state.postgres is not None
    assert state.postgres.data_dir is not None
    pid_file = state.postgres.data_dir / "postmaster.pid"
    postmaster = ProcessRecord.of(int(pid_file.read_text().split()[0]))

    down = harness.run("down")
    assert down.returncode == 0, down.stderr
    assert not toxiproxy_process.alive()
    assert not postmaster.alive()
    assert not listening(state.postgres.port)
    assert harness.state() is None


def holds_flock(pid: int, path: Path) -> bool:
    """True while ``pid`` holds a ``flock`` on ``path`` (read from ``/proc/locks``, without
    taking the lock, which would make the holder's own attempt fail)."""
    inode = path.stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if fields[1] == "FLOCK" and fields[4] == str(pid) and fields[5].endswith(f":{inode}"):
            return True
    return False


def test_ctrl_c_during_down_finishes_the_stop(harness: Harness) -> None:
    """Ctrl-C (also pressed again) while `down` stops the stack: the stop goes on to the end,
    then the command ends as interrupted. It used to stop half-way, leaving PostgreSQL and
    Toxiproxy running with the app gone (seen when a test session was interrupted)."""
    up = harness.run("up", HARNESS_APP_WORKERS="1")
    assert up.returncode == 0, up.stderr
    state = harness.state()
    assert state is not None
    processes = processes_of(state, app_workers=1)
    ports = ports_of(state)
    down = harness.spawn("down")
    lock = harness.state_dir / "lock"
    deadline = time.monotonic() + 30
    while not holds_flock(down.pid, lock) and down.poll() is None:
        assert time.monotonic() < deadline, "down never took the stack's lock"
        time.sleep(0.002)
    for _ in range(3):
        if down.poll() is None:
            down.send_signal(signal.SIGINT)
            time.sleep(0.1)
    out, err = down.communicate(timeout=60)
    assert not [proc.pid for proc in processes if proc.alive()], out + err
    assert not ours_listening(ports, harness.state_dir, processes)
    assert harness.state() is None
    assert "interrupted: finishing the stop first" in err, out + err
    assert down.returncode == 130, out + err


def test_sigterm_during_up_stops_what_it_started(harness: Harness) -> None:
    up = harness.spawn("up")
    state = harness.wait_for_toxiproxy_record()
    up.send_signal(signal.SIGTERM)
    up.communicate(timeout=60)
    assert state is not None
    assert state.postgres is not None
    assert state.toxiproxy is not None
    assert state.toxiproxy.process is not None
    if up.returncode == 0:
        pytest.fail("up finished before the signal; the test needs it interrupted")
    assert up.returncode == 128 + signal.SIGTERM
    assert not state.toxiproxy.process.record().alive()
    assert not listening(state.postgres.port)
    assert harness.state() is None


def test_a_progress_line_that_cannot_be_written_stops_nothing_half_way(harness: Harness) -> None:
    """The caller's output gone (a closed pipe): the start goes on to the end, and stopping
    it leaves nothing behind."""

    def closed_pipe(message: str) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    settings = Settings.from_env({}).with_overrides(state_dir=harness.state_dir, app_workers=1)
    stack = Stack(settings, closed_pipe)
    state, started = stack.up()
    assert started
    try:
        assert all(status.healthy for status in stack.probe(state) if status.required)
        processes = processes_of(state, app_workers=1)
        ports = ports_of(state)
    finally:
        assert stack.down()
    assert not any(proc.alive() for proc in processes)
    assert not ours_listening(ports, harness.state_dir, processes)


def test_up_refuses_an_occupied_port(harness: Harness) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        result = harness.run("up", "--pg-port", str(port))
        assert_error_line(result, f"port {port} for PostgreSQL is already in use")
        result = harness.run("up", HARNESS_TOXIPROXY_PORT=str(port))
        assert_error_line(result, f"port {port} for the Toxiproxy API", "HARNESS_TOXIPROXY_PORT")
    assert harness.state() is None


@pytest.mark.parametrize(
    ("env", "args", "fragments"),
    [
        ({"HARNESS_PG_PROT": "1"}, ["up"], ["unknown variable HARNESS_PG_PROT", "HARNESS_PG_PORT"]),
        ({"HARNESS_PG_PORT": "five"}, ["up"], ["HARNESS_PG_PORT='five'"]),
        ({"TOXIPROXY_URL": "127.0.0.1:8474"}, ["up"], ["TOXIPROXY_URL", "http URL"]),
        ({}, ["up", "--pg-port", "abc"], ["'abc' is not a valid integer"]),
        ({}, ["up", "--pg-port", "0"], ["HARNESS_PG_PORT=0"]),
        ({}, ["launch"], ["No such command 'launch'"]),
        ({"HARNESS_PG_BIN": "/nonexistent/bin"}, ["up"], ["initdb", "apt-get install postgresql"]),
        ({"TOXIPROXY_SERVER": "/nonexistent/toxiproxy-server"}, ["up"], ["TOXIPROXY_SERVER"]),
        ({}, ["demo", "--link", "pg_nope"], ["unknown link 'pg_nope'"]),
        ({}, ["demo", "--link", "payments"], ["does not lead to PostgreSQL"]),
    ],
    ids=[
        "unknown-variable", "bad-port-variable", "bad-url", "bad-option-type", "bad-port-option",
        "unknown-command", "no-postgres", "no-toxiproxy-binary", "unknown-link", "link-not-pg",
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_4(
    harness: Harness, env: dict[str, str], args: list[str], fragments: list[str]
) -> None:
    result = harness.run(*args, **env)
    assert_error_line(result, *fragments)
    assert harness.state() is None


def test_missing_toxiproxy_and_go_says_what_to_install(harness: Harness, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "harness").symlink_to(HARNESS)
    result = harness.run(
        "up",
        PATH=f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin",
        HARNESS_TOOLS_DIR=str(tmp_path / "empty-tools"),
    )
    assert shutil.which("toxiproxy-server", path=f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin") is None
    assert_error_line(result, "Toxiproxy server not found", "install Go >= 1.23", "TOXIPROXY_URL")
    assert harness.state() is None


def test_demo_shows_the_client_failing_and_recovering(harness: Harness) -> None:
    result = harness.run("demo", "--cut", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    cut = [line for line in lines if " cut " in line and "FAIL" in line]
    recovered = [line for line in lines if "recovered" in line and " ok " in line]
    assert cut, result.stdout
    assert recovered, result.stdout
    assert "PASS: the client failed while the link was cut" in result.stdout
    assert "stack stopped" in result.stdout
    assert harness.state() is None


def test_go_too_old_says_what_to_install(harness: Harness, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    old_go = bin_dir / "go"
    old_go.write_text("#!/bin/sh\necho 'go version go1.19.8 linux/amd64'\n")
    old_go.chmod(0o755)
    result = harness.run(
        "up",
        PATH=f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin",
        HARNESS_TOOLS_DIR=str(tmp_path / "empty-tools"),
    )
    assert_error_line(result, "Go is too old (1.19)", "install Go >= 1.23")
    assert harness.state() is None


def test_existing_servers_are_used_and_never_stopped(
    harness: Harness, pg_server: PostgresServer, toxiproxy_url: str
) -> None:
    result = harness.run("up", HARNESS_PG_DSN=pg_server.dsn(), TOXIPROXY_URL=toxiproxy_url)
    assert result.returncode == 0, result.stderr
    assert "using the existing server" in result.stderr
    state = harness.state()
    assert state is not None
    assert state.postgres is not None
    assert state.toxiproxy is not None
    assert (state.postgres.kind, state.toxiproxy.kind) == ("external", "external")
    assert state.postgres.port == pg_server.port
    with urllib.request.urlopen(f"{toxiproxy_url}/proxies", timeout=5) as answer:
        proxies = json.loads(answer.read())
    assert {"pg_deposits", "pg_p2p", "payments"} <= set(proxies)
    status = harness.run("status", HARNESS_PG_DSN=pg_server.dsn(), TOXIPROXY_URL=toxiproxy_url)
    assert status.returncode == 0, status.stderr

    down = harness.run("down", HARNESS_PG_DSN=pg_server.dsn(), TOXIPROXY_URL=toxiproxy_url)
    assert down.returncode == 0, down.stderr
    # Our proxies are gone, the servers themselves still answer.
    with urllib.request.urlopen(f"{toxiproxy_url}/proxies", timeout=5) as answer:
        assert not {"pg_deposits", "pg_p2p", "payments"} & set(json.loads(answer.read()))
    postgres.ping(pg_server.dsn())


def test_existing_toxiproxy_with_our_proxies_is_refused(
    harness: Harness, toxiproxy_url: str
) -> None:
    first = harness.run("up", TOXIPROXY_URL=toxiproxy_url)
    assert first.returncode == 0, first.stderr
    other_state = harness.state_dir / "second"
    second = harness.run("up", TOXIPROXY_URL=toxiproxy_url, HARNESS_STATE_DIR=str(other_state))
    assert_error_line(second, "already has proxies", "another stack uses that server")
    assert not (other_state / "stack.json").exists()
    # The first stack's links were not touched by the refused second one.
    assert harness.run("status", TOXIPROXY_URL=toxiproxy_url).returncode == 0
