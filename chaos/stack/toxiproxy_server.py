"""The real Toxiproxy server (Shopify's): found, built once, started and stopped.

Lookup order: ``TOXIPROXY_URL`` (a running server, used as is and never started or
stopped) → ``TOXIPROXY_SERVER`` (a binary) → the project's tool folder → ``toxiproxy-server``
on PATH → built into the tool folder with ``go install`` when Go ≥ 1.23 is available.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from isolation_harness.chaos.errors import (
    ComponentError,
    ConfigError,
    MissingToolError,
    NotReadyError,
)
from isolation_harness.chaos.stack.process import ProcessRecord, spawn_detached, stop
from isolation_harness.chaos.stack.settings import Settings
from isolation_harness.topology.ports import LOOPBACK, wait_closed

MODULE = "github.com/Shopify/toxiproxy/v2/cmd/server"
VERSION = "v2.12.0"
BINARY = "toxiproxy-server"
MIN_GO = (1, 23)
_FIX = (
    f"install Go >= {MIN_GO[0]}.{MIN_GO[1]} and run `make setup` (it runs `go install "
    f"{MODULE}@{VERSION}`), or set TOXIPROXY_SERVER to a toxiproxy-server binary, or set "
    "TOXIPROXY_URL to a running server"
)


@dataclass(frozen=True)
class ServerBinary:
    """A toxiproxy-server binary and where it was found."""

    path: Path
    source: str


def find_binary(settings: Settings) -> ServerBinary | None:
    """The binary to start, following the lookup order; None when there is none yet."""
    if settings.toxiproxy_server is not None:
        path = settings.toxiproxy_server
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ConfigError(
                f"TOXIPROXY_SERVER={path} is not an executable file",
                "point it at a toxiproxy-server binary or unset it",
            )
        return ServerBinary(path, "TOXIPROXY_SERVER")
    built = settings.tools_dir / "bin" / BINARY
    if built.is_file() and os.access(built, os.X_OK):
        return ServerBinary(built, "tool folder")
    on_path = shutil.which(BINARY)
    if on_path:
        return ServerBinary(Path(on_path), "PATH")
    return None


def go_version(go: str) -> tuple[int, int] | None:
    """The (major, minor) version of the ``go`` command, or None if it cannot say."""
    try:
        out = subprocess.run(
            [go, "version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"go(\d+)\.(\d+)", out)
    return (int(match[1]), int(match[2])) if match else None


def build(tools_dir: Path) -> ServerBinary:
    """Build the server with ``go install`` into ``tools_dir/bin`` (needs Go ≥ 1.23)."""
    go = shutil.which("go")
    if go is None:
        raise MissingToolError("Toxiproxy server not found and Go is not installed", _FIX)
    version = go_version(go)
    if version is None or version < MIN_GO:
        found = f"{version[0]}.{version[1]}" if version else "unknown"
        raise MissingToolError(f"Toxiproxy server not found and Go is too old ({found})", _FIX)
    bin_dir = tools_dir / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(bin_dir), "GOFLAGS": "-buildvcs=false"}
    try:
        result = subprocess.run(
            # Stamp the version as release builds do (a plain build reports "git").
            [
                go,
                "install",
                f"-ldflags=-X github.com/Shopify/toxiproxy/v2.Version={VERSION.lstrip('v')}",
                f"{MODULE}@{VERSION}",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ComponentError("building the Toxiproxy server timed out after 600 s", _FIX) from exc
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise ComponentError(f"building the Toxiproxy server failed: {last}", _FIX)
    # `go install` names the binary after its folder (`server`); give it its real name.
    target = bin_dir / BINARY
    (bin_dir / "server").replace(target)
    return ServerBinary(target, "built")


def ensure_binary(settings: Settings) -> ServerBinary:
    """The binary to start, built first if none is found."""
    return find_binary(settings) or build(settings.tools_dir)


def api_get(url: str, path: str, timeout: float = 2.0) -> object:
    """GET ``url + path`` and decode its JSON (sync; for probes outside an event loop)."""
    try:
        with urllib.request.urlopen(url + path, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read() or b"null")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ComponentError(f"Toxiproxy at {url} does not answer {path} ({exc})") from exc


def wait_ready(url: str, timeout: float) -> str:
    """Poll ``/version`` until the server answers; return its version."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = api_get(url, "/version", timeout=0.5)
        except ComponentError as exc:
            if time.monotonic() >= deadline:
                raise NotReadyError(
                    f"Toxiproxy not ready after {timeout:g} s: {exc.problem}"
                ) from exc
            time.sleep(0.05)
            continue
        if isinstance(answer, dict):
            return str(answer.get("version", "?"))
        return str(answer)


@dataclass(frozen=True)
class RunningServer:
    """A Toxiproxy server the harness started (``process`` set) or found (``process`` None)."""

    url: str
    version: str
    process: ProcessRecord | None = None
    port: int | None = None


def start(
    binary: ServerBinary,
    port: int,
    log_path: Path,
    *,
    timeout: float = 15.0,
    on_spawn: Callable[[ProcessRecord], None] | None = None,
) -> RunningServer:
    """Start the server on ``127.0.0.1:port`` and wait until its API answers.

    ``on_spawn`` is called with the new process before the wait, so a caller can record it.
    """
    record = spawn_detached([str(binary.path), "-host", LOOPBACK, "-port", str(port)], log_path)
    if on_spawn is not None:
        on_spawn(record)
    url = f"http://{LOOPBACK}:{port}"
    try:
        version = wait_ready(url, timeout)
    except NotReadyError as exc:
        stop(record)
        raise ComponentError(f"{exc.problem}; see {log_path}") from exc
    if not record.alive():
        raise ComponentError(f"another process answers on port {port}; see {log_path}")
    return RunningServer(url, version, record, port)


def connect(url: str, timeout: float = 5.0) -> RunningServer:
    """Use a server that is already running at ``url`` (``TOXIPROXY_URL``)."""
    try:
        version = wait_ready(url, timeout)
    except NotReadyError as exc:
        raise ComponentError(
            f"TOXIPROXY_URL={url} does not answer",
            "start that server, correct the URL, or unset TOXIPROXY_URL to let the harness "
            "start one",
        ) from exc
    return RunningServer(url, version)


def shutdown(server: RunningServer) -> None:
    """Stop a server the harness started and wait until its port is closed."""
    if server.process is None:
        return
    stop(server.process)
    if server.port is not None and not wait_closed(server.port, time.monotonic() + 5.0):
        raise ComponentError(f"Toxiproxy port {server.port} still listening after its stop")
