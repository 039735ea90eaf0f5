"""PostgreSQL for the harness: a throw-away local cluster it controls, or an existing server.

The local cluster lives in a folder of the harness, listens on one loopback port with trust
authentication for loopback only, and is run as the ``postgres`` user when the harness runs
as root (PostgreSQL refuses to run as root). Its controls (start, stop, restart, crash) are
what the chaos faults use.

*Why one module of this length:* one concept, a PostgreSQL server the harness uses, in its
two forms (a local cluster it controls, an existing server it only connects to) behind the
same interface, with the helpers both share.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import psycopg2
from psycopg2 import sql

from isolation_harness.chaos.errors import (
    ComponentError,
    MissingToolError,
    NotReadyError,
    NotSupportedError,
)
from isolation_harness.chaos.stack.process import (
    ProcessRecord,
    children_of,
    start_ticks,
    wait_gone,
    wait_reaped,
)
from isolation_harness.topology.ports import LOOPBACK

StopMode = Literal["smart", "fast", "immediate"]
RestartMode = Literal["fast", "immediate"]
SUPERUSER = "postgres"
_RUN_AS = "postgres"
INITDB_OPTIONS = (
    "-U",
    SUPERUSER,
    "--auth=trust",
    "--encoding=UTF8",
    "--locale=C",
    "--no-sync",
)
_INSTALL_FIX = (
    "install the server (Debian: apt-get install postgresql), set HARNESS_PG_BIN to the folder "
    "holding initdb and pg_ctl, or set HARNESS_PG_DSN to an existing server"
)


def find_bin_dir(explicit: Path | None = None) -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: explicit, newest Debian one, or PATH."""
    if explicit is not None:
        if not (explicit / "initdb").exists() or not (explicit / "pg_ctl").exists():
            raise MissingToolError(
                f"HARNESS_PG_BIN={explicit} holds no initdb and pg_ctl", _INSTALL_FIX
            )
        return explicit
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for candidate in debian:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    on_path = shutil.which("pg_ctl")
    if on_path:
        folder = Path(on_path).resolve().parent
        if (folder / "initdb").exists():
            return folder
    raise MissingToolError("PostgreSQL server binaries (initdb, pg_ctl) not found", _INSTALL_FIX)


def connect(dsn: str, timeout: float = 2.0) -> psycopg2.extensions.connection:
    """A new autocommit connection, or :class:`ComponentError` naming the cause."""
    try:
        conn = psycopg2.connect(dsn, connect_timeout=max(1, round(timeout)))
    except psycopg2.Error as exc:
        raise ComponentError(f"cannot connect to PostgreSQL ({_first_line(exc)})") from exc
    conn.autocommit = True
    return conn


def ping(dsn: str, timeout: float = 2.0) -> None:
    """Open a connection and run ``SELECT 1``; raise :class:`ComponentError` if it fails."""
    conn = connect(dsn, timeout)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
    except psycopg2.Error as exc:
        raise ComponentError(f"PostgreSQL query failed ({_first_line(exc)})") from exc
    finally:
        conn.close()


def wait_ready(dsn: str, timeout: float, what: str = "PostgreSQL") -> float:
    """Poll until a new connection succeeds; return the seconds waited.

    Raises :class:`NotReadyError` with the last error once ``timeout`` seconds have passed.
    """
    started = time.monotonic()
    deadline = started + timeout
    last = "no attempt"
    while True:
        try:
            ping(dsn, timeout=min(2.0, max(0.5, deadline - time.monotonic())))
            return time.monotonic() - started
        except ComponentError as exc:
            last = exc.problem
        if time.monotonic() >= deadline:
            raise NotReadyError(f"{what} not ready after {timeout:g} s: {last}")
        time.sleep(0.05)


def ensure_database(admin_dsn: str, name: str, owner: str | None = None) -> None:
    """Create database ``name`` unless it exists."""
    conn = connect(admin_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
                if owner:
                    statement += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
                cur.execute(statement)
    except psycopg2.Error as exc:
        raise ComponentError(f"cannot create database {name} ({_first_line(exc)})") from exc
    finally:
        conn.close()


def drop_database(admin_dsn: str, name: str) -> None:
    """Drop database ``name`` if it exists, disconnecting its sessions."""
    conn = connect(admin_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    except psycopg2.Error as exc:
        raise ComponentError(f"cannot drop database {name} ({_first_line(exc)})") from exc
    finally:
        conn.close()


def with_dbname(dsn: str, dbname: str) -> str:
    """``dsn`` (key=value or URI form) pointing at another database."""
    params = psycopg2.extensions.parse_dsn(dsn)
    params["dbname"] = dbname
    return str(psycopg2.extensions.make_dsn(**params))


class PostgresServer(Protocol):
    """What the stack needs of a PostgreSQL server, local or external."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    def dsn(self, dbname: str = "postgres") -> str: ...


@dataclass(frozen=True)
class ExternalPostgres:
    """An existing server given by ``HARNESS_PG_DSN``: used, never started or stopped."""

    admin_dsn: str

    @property
    def host(self) -> str:
        return str(psycopg2.extensions.parse_dsn(self.admin_dsn).get("host") or LOOPBACK)

    @property
    def port(self) -> int:
        return int(psycopg2.extensions.parse_dsn(self.admin_dsn).get("port") or 5432)

    def dsn(self, dbname: str = "postgres") -> str:
        """A DSN for ``dbname`` on this server, with the given credentials."""
        return with_dbname(self.admin_dsn, dbname)

    def restart(self, mode: RestartMode = "fast") -> None:
        """Not possible: the harness does not own this server."""
        raise NotSupportedError(
            "cannot restart an external PostgreSQL server (HARNESS_PG_DSN)",
            "unset HARNESS_PG_DSN to let the harness start a cluster it controls",
        )


#: where a cluster whose data need not survive the operating system (fsync off) keeps its
#: folder: memory, which copies the kept ``initdb`` output ten times faster than a busy disk
#: (0.1-0.2 s against 1.1-1.5 s measured) and takes the run's writes off the disk
RAM_ROOT = Path("/dev/shm")  # noqa: S108 - each cluster's folder in it comes from mkdtemp
#: a RAM folder of a cluster: its ``data`` and ``postgres.log``, and ``owner`` (the state
#: folder it belongs to, for whoever looks for what a run left behind)
RAM_PREFIX = "harness-pg-"
#: free memory there needed to put a cluster in it (a container's default /dev/shm is 64 MB)
RAM_NEEDED = 1 << 30


def data_folder(state_dir: Path, *, fsync: bool, ram_root: Path = RAM_ROOT) -> Path:
    """Where a new cluster of the stack in ``state_dir`` keeps its data: with fsync off, a
    folder of its own in RAM (``ram_root``) when that has room, else ``state_dir/pg/data``.
    The cluster's log goes beside its data; :meth:`LocalCluster.destroy` removes both."""
    if not fsync and _has_room(ram_root):
        home = Path(tempfile.mkdtemp(prefix=RAM_PREFIX, dir=ram_root))
        home.chmod(0o755)  # the postgres user enters it
        (home / "owner").write_text(str(state_dir.resolve()))
        return home / "data"
    return state_dir / "pg" / "data"


def _has_room(folder: Path) -> bool:
    try:
        found = os.statvfs(folder)
    except OSError:
        return False
    return os.access(folder, os.W_OK) and found.f_bavail * found.f_frsize >= RAM_NEEDED


def _ram_home(data_dir: Path) -> Path | None:
    """The RAM folder that holds ``data_dir``, if it is one of :func:`data_folder`'s."""
    home = data_dir.parent
    return home if home.name.startswith(RAM_PREFIX) and (home / "owner").exists() else None


class LocalCluster:
    """A throw-away cluster in ``data_dir`` on ``port``, controlled with ``pg_ctl``."""

    def __init__(
        self,
        bin_dir: Path,
        data_dir: Path,
        port: int,
        *,
        fsync: bool = False,
        max_connections: int = 500,
        templates: Path | None = None,
    ) -> None:
        self.bin_dir = bin_dir
        #: where a fresh ``initdb`` output is kept to be copied, not made again (None: never)
        self.templates = templates
        self.data_dir = data_dir
        self.log_path = data_dir.parent / "postgres.log"
        self._port = port
        self.fsync = fsync
        self.max_connections = max_connections

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def port(self) -> int:
        return self._port

    def dsn(self, dbname: str = "postgres") -> str:
        """A DSN for ``dbname`` as the superuser, over TCP on loopback."""
        return f"host={LOOPBACK} port={self._port} user={SUPERUSER} dbname={dbname}"

    # -- life cycle -------------------------------------------------------------------------

    def initialised(self) -> bool:
        """True once ``initdb`` has run in the data folder."""
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        """Make the data folder (a copy of a kept ``initdb`` output, or ``initdb``) and write
        the harness's settings (idempotent)."""
        if self.initialised():
            return
        template = self._template()
        if template is not None and (template / "PG_VERSION").exists():
            # initdb spends a CPU-second and more on what is the same for every cluster
            shutil.copytree(template, self.data_dir, symlinks=True, dirs_exist_ok=True)
            self.log_path.touch()
            self._hand_over(*_tree(self.data_dir), self.log_path)
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.log_path.touch()
            self._hand_over(self.data_dir, self.log_path)
            self._run(["initdb", "-D", str(self.data_dir), *INITDB_OPTIONS], timeout=120)
            if template is not None:
                _keep(self.data_dir, template)
        fsync = "on" if self.fsync else "off"
        settings = {
            "listen_addresses": f"'{LOOPBACK}'",
            "port": str(self._port),
            # No Unix socket: everything goes over TCP, which is what Toxiproxy can cut.
            "unix_socket_directories": "''",
            "max_connections": str(self.max_connections),
            "shared_buffers": "'64MB'",
            # fsync off only risks data on an OS crash, which the harness never causes.
            # synchronous_commit stays on: with it off, a crash or an immediate restart
            # loses acknowledged commits, and the money invariants would blame the app.
            "fsync": fsync,
            "synchronous_commit": "on",
            "full_page_writes": fsync,
            "log_min_messages": "warning",
            "log_connections": "off",
        }
        conf = "".join(f"{key} = {value}\n" for key, value in settings.items())
        self._write(self.data_dir / "harness.conf", conf)
        with (self.data_dir / "postgresql.conf").open("a") as main_conf:
            main_conf.write("\ninclude = 'harness.conf'\n")
        # Trust, but for loopback only.
        hba = "host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"
        self._write(self.data_dir / "pg_hba.conf", hba)

    def start(self, timeout: float = 30.0) -> None:
        """Start the postmaster and wait until it accepts connections."""
        self.init()
        if self.postmaster() is None:
            self._pg_ctl("start", "-l", str(self.log_path), timeout=timeout)
        wait_ready(self.dsn(), timeout)

    def stop(self, mode: StopMode = "fast", timeout: float = 30.0) -> None:
        """Stop the postmaster (no-op if it is not running)."""
        if self.postmaster() is None:
            return
        self._pg_ctl("stop", "-m", mode, timeout=timeout)

    def restart(self, mode: RestartMode = "fast", timeout: float = 30.0) -> None:
        """Stop (``fast``: clean; ``immediate``: no checkpoint, crash recovery) and start."""
        self.stop(mode, timeout)
        self.start(timeout)

    def crash(self, timeout: float = 10.0) -> None:
        """SIGKILL the postmaster and its backends, as when the database host dies."""
        record = self.postmaster()
        if record is None:
            raise ComponentError("cannot crash PostgreSQL: it is not running")
        backends = [ProcessRecord(pid, start_ticks(pid) or 0) for pid in children_of(record.pid)]
        os.kill(record.pid, signal.SIGKILL)
        for backend in backends:
            with contextlib.suppress(ProcessLookupError):
                os.kill(backend.pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        for proc in (*backends, record):
            if not wait_gone(proc, deadline):
                raise ComponentError(f"PostgreSQL process {proc.pid} survived SIGKILL")
        # The dead postmaster may linger as a zombie until init reaps it (here: up to ~2 s),
        # and PostgreSQL refuses to start while the pid in its lock file exists. After a
        # real crash that pid is gone, so drop the stale lock file rather than wait.
        if not wait_reaped(record.pid, time.monotonic() + 0.1):
            (self.data_dir / "postmaster.pid").unlink(missing_ok=True)

    def destroy(self) -> None:
        """Stop the cluster if needed and delete its folder (and its RAM folder, log
        included, for one of :func:`data_folder`'s)."""
        try:
            self.stop("immediate")
        finally:
            record = self.postmaster()
            if record is not None:
                self.crash()
            home = _ram_home(self.data_dir)
            shutil.rmtree(self.data_dir if home is None else home, ignore_errors=True)

    def postmaster(self) -> ProcessRecord | None:
        """The running postmaster, from ``postmaster.pid``; None when not running."""
        try:
            first_line = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        except FileNotFoundError:
            return None
        if not first_line.strip().isdigit():
            return None
        pid = int(first_line)
        ticks = start_ticks(pid)
        if ticks is None:
            return None
        record = ProcessRecord(pid, ticks)
        return record if record.alive() else None

    # -- helpers ----------------------------------------------------------------------------

    def _pg_ctl(self, action: str, *args: str, timeout: float) -> None:
        self._run(
            [
                "pg_ctl",
                action,
                "-D",
                str(self.data_dir),
                "-w",
                "-t",
                str(max(1, round(timeout))),
                *args,
            ],
            timeout=timeout + 10,
            what=f"pg_ctl {action}",
        )

    def _run(self, argv: Sequence[str], timeout: float, what: str = "") -> None:
        what = what or argv[0]
        command = [str(self.bin_dir / argv[0]), *argv[1:]]
        if _running_as_root():
            command = ["runuser", "-u", _RUN_AS, "--", *command]
        try:
            result = subprocess.run(
                command,
                cwd="/",  # the postgres user may not be allowed into the caller's folder
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ComponentError(f"{what} timed out after {timeout:g} s") from exc
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            tail = self._log_tail()
            raise ComponentError(
                f"{what} failed: {detail[-1] if detail else f'exit code {result.returncode}'}"
                + (f" (log: {tail})" if tail else ""),
                f"see {self.log_path}",
            )

    def _template(self) -> Path | None:
        """The kept ``initdb`` output for these binaries and options (it may not exist yet)."""
        if self.templates is None:
            return None
        initdb = (self.bin_dir / "initdb").resolve()
        try:
            made = initdb.stat()
        except OSError:
            return None
        key = f"{initdb}:{made.st_size}:{made.st_mtime_ns}:{' '.join(INITDB_OPTIONS)}"
        return self.templates / hashlib.sha256(key.encode()).hexdigest()[:16]

    def _log_tail(self) -> str:
        try:
            lines = [ln for ln in self.log_path.read_text().splitlines() if ln.strip()]
        except OSError:
            return ""
        errors = [ln for ln in lines if re.search(r"FATAL|ERROR|PANIC", ln)]
        return (errors or lines or [""])[-1][:300]

    def _hand_over(self, *paths: Path) -> None:
        """Give the ``postgres`` user what it must own, and check it can reach it."""
        if not _running_as_root():
            return
        try:
            user = pwd.getpwnam(_RUN_AS)
        except KeyError as exc:
            raise MissingToolError(
                f"running as root but there is no '{_RUN_AS}' user to run PostgreSQL as",
                "install Debian's postgresql package (it creates the user) or run as another user",
            ) from exc
        for path in paths:
            os.chown(path, user.pw_uid, user.pw_gid)
        blocked = _first_untraversable(self.data_dir.parent)
        if blocked is not None:
            raise ComponentError(
                f"the {_RUN_AS} user cannot enter {blocked}, so it cannot run the cluster there",
                "set HARNESS_STATE_DIR to a folder under /tmp, or chmod o+x the folders above it",
            )

    def _write(self, path: Path, text: str) -> None:
        path.write_text(text)
        if _running_as_root():
            user = pwd.getpwnam(_RUN_AS)
            os.chown(path, user.pw_uid, user.pw_gid)


def _keep(data_dir: Path, template: Path) -> None:
    """Keep a copy of a fresh ``initdb`` output as ``template``, whole or not at all (another
    process may keep its own at the same time: the first one stays)."""
    partial = template.with_name(f"{template.name}.{os.getpid()}.partial")
    try:
        shutil.copytree(data_dir, partial, symlinks=True)
        partial.rename(template)
    except OSError:
        pass  # kept by another process, or no room: the next cluster runs initdb again
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _tree(folder: Path) -> list[Path]:
    """``folder`` and everything in it."""
    return [folder, *folder.rglob("*")]


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _first_untraversable(folder: Path) -> Path | None:
    """The first folder from ``/`` down to ``folder`` that others cannot enter, if any."""
    for path in [*reversed(folder.resolve().parents), folder.resolve()]:
        if not path.stat().st_mode & 0o001:
            return path
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
