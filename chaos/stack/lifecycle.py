"""The local stack: PostgreSQL, Toxiproxy and one proxy per link, started and stopped as one.

``up`` records each step in the state file before it takes the next one, and undoes what it
started if a step fails or it is interrupted; ``down`` stops whatever the state file names,
also after ``up`` itself was killed.

*Why one module of this length:* ``up``, ``status`` and ``down`` are one life cycle over one
state file: each step of ``up`` has its undo and its stop in ``down`` next to it. The
processes themselves are started elsewhere (:mod:`chaos.stack.postgres`,
:mod:`chaos.stack.toxiproxy_server`, :mod:`chaos.stack.backend`).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2.extensions

from isolation_harness.chaos.errors import (
    ComponentError,
    HarnessError,
    PortInUseError,
    ProxyNotFound,
)
from isolation_harness.chaos.interruption import deferred
from isolation_harness.chaos.stack import backend, postgres, toxiproxy_server
from isolation_harness.chaos.stack.process import ProcessRecord, stop
from isolation_harness.chaos.stack.settings import Settings
from isolation_harness.chaos.stack.state import (
    AppState,
    LinkState,
    PostgresState,
    ProcessState,
    StackState,
    StateStore,
    ToxiproxyState,
)
from isolation_harness.chaos.toxiproxy.client import ProxySpec, ToxiproxyClient
from isolation_harness.topology.links import LINK_NAMES, LINKS
from isolation_harness.topology.ports import LOOPBACK, free_port, is_listening, wait_closed
from isolation_harness.topology.services import APP_DATABASE

Report = Callable[[str], None]


@dataclass(frozen=True)
class ComponentStatus:
    """What ``status`` found for one component."""

    name: str
    healthy: bool
    address: str
    detail: str
    #: False for parts that are optional at this stage (e.g. a fake not started yet)
    required: bool = True


@dataclass
class _Plan:
    """What ``up`` will start, decided and checked before it starts anything."""

    pg_bin: Path | None = None
    pg_port: int | None = None
    toxiproxy_port: int | None = None
    toxiproxy_binary: toxiproxy_server.ServerBinary | None = None
    app_port: int | None = None
    #: what the payment fake signs its IPNs with, and the app checks them with
    ipn_secret: str = field(default_factory=lambda: secrets.token_hex(16))


def _quiet(_: str) -> None:
    return None


def _never_failing(report: Report) -> Report:
    """``report``, which a closed output (``harness up | head -1``) cannot make fail: a
    failed line must not stop a start half-way, or its undoing."""

    def say(message: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            report(message)

    return say


class Stack:
    """The stack described by ``settings``; its state lives in ``settings.state_dir``."""

    def __init__(
        self,
        settings: Settings,
        report: Report = _quiet,
        *,
        app_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.state_dir = settings.state_dir.resolve()
        self.store = StateStore(self.state_dir)
        self.report = _never_failing(report)
        #: app settings this stack's app runs with instead of the defaults (a scenario's)
        self.app_overrides = dict(app_overrides or {})

    # -- up -----------------------------------------------------------------------------------

    def up(self) -> tuple[StackState, bool]:
        """Start the stack unless it runs; return its state and whether anything was started."""
        with self.store.locked():
            existing = self.store.load()
            if existing is not None:
                if all(s.healthy for s in self.probe(existing) if s.required):
                    return existing, False
                self.report("a previous stack is partly down: stopping what is left of it")
                self._down(existing)
            plan = self._plan()
            state = StackState()
            try:
                # the fakes' start-up (a Python interpreter each) overlaps PostgreSQL's
                self._start_fakes(state, plan)
                self._start_postgres(state, plan)
                self._start_toxiproxy(state, plan)
                self._create_links(state)
                self._start_app(state, plan)
            except BaseException:
                self.report("start failed: stopping what was started")
                with deferred("stopping what was started"), contextlib.suppress(HarnessError):
                    self._down(state)
                raise
            return state, True

    def _plan(self) -> _Plan:
        """Check every input before anything starts, so bad input leaves nothing behind."""
        settings = self.settings
        plan = _Plan()
        if settings.pg_dsn is None:
            plan.pg_bin = postgres.find_bin_dir(settings.pg_bin)
            plan.pg_port = (
                _ensure_free(settings.pg_port, "PostgreSQL", "HARNESS_PG_PORT")
                if settings.pg_port
                else free_port()
            )
        plan.app_port = (
            _ensure_free(settings.app_port, "the reference app", "HARNESS_APP_PORT")
            if settings.app_port
            else free_port()
        )
        if settings.toxiproxy_url is not None:
            _check_no_clash(settings.toxiproxy_url)
        else:
            if settings.toxiproxy_port:
                plan.toxiproxy_port = _ensure_free(
                    settings.toxiproxy_port, "the Toxiproxy API", "HARNESS_TOXIPROXY_PORT"
                )
            else:
                plan.toxiproxy_port = free_port()
            plan.toxiproxy_binary = toxiproxy_server.ensure_binary(settings)
        return plan

    def _start_postgres(self, state: StackState, plan: _Plan) -> None:
        settings = self.settings
        if settings.pg_dsn is not None:
            server = postgres.ExternalPostgres(settings.pg_dsn)
            postgres.wait_ready(
                server.dsn(), timeout=10, what=f"HARNESS_PG_DSN server {server.host}:{server.port}"
            )
            state.postgres = PostgresState(
                kind="external", host=server.host, port=server.port, dsn=server.dsn()
            )
            self.store.save(state)
            self.report(f"PostgreSQL: using the existing server at {server.host}:{server.port}")
            return
        assert plan.pg_bin is not None
        assert plan.pg_port is not None
        port, bin_dir = plan.pg_port, plan.pg_bin
        cluster = postgres.LocalCluster(
            bin_dir,
            postgres.data_folder(self.state_dir, fsync=settings.pg_fsync == "on"),
            port,
            fsync=settings.pg_fsync == "on",
            max_connections=settings.pg_max_connections,
            templates=settings.pg_templates,
        )
        # Recorded before it starts, so that `down` finds the cluster if `up` dies now.
        state.postgres = PostgresState(
            kind="local",
            host=LOOPBACK,
            port=port,
            dsn=cluster.dsn(),
            data_dir=cluster.data_dir,
            bin_dir=bin_dir,
        )
        self.store.save(state)
        self.report(
            f"PostgreSQL: starting a cluster on {LOOPBACK}:{port} in {cluster.data_dir} ({bin_dir})"
        )
        cluster.start()

    def _start_toxiproxy(self, state: StackState, plan: _Plan) -> None:
        settings = self.settings
        if settings.toxiproxy_url is not None:
            running = toxiproxy_server.connect(settings.toxiproxy_url)
            state.toxiproxy = ToxiproxyState(
                kind="external", url=running.url, version=running.version
            )
            self.store.save(state)
            self.report(f"Toxiproxy: using the existing server at {running.url}")
            return
        assert plan.toxiproxy_binary is not None
        assert plan.toxiproxy_port is not None
        port, binary = plan.toxiproxy_port, plan.toxiproxy_binary
        self.report(f"Toxiproxy: starting {binary.path} ({binary.source}) on {LOOPBACK}:{port}")
        log_path = self.state_dir / "logs" / "toxiproxy.log"
        running = toxiproxy_server.start(
            binary,
            port,
            log_path,
            on_spawn=lambda record: self._record_toxiproxy(state, binary.path, port, record),
        )
        assert state.toxiproxy is not None
        state.toxiproxy.version = running.version
        self.store.save(state)

    def _record_toxiproxy(
        self, state: StackState, binary: Path, port: int, record: ProcessRecord
    ) -> None:
        state.toxiproxy = ToxiproxyState(
            kind="local",
            url=f"http://{LOOPBACK}:{port}",
            port=port,
            process=ProcessState.of(record),
            binary=str(binary),
        )
        self.store.save(state)

    def _create_links(self, state: StackState) -> None:
        assert state.postgres is not None
        tox = state.toxiproxy
        assert tox is not None
        upstreams = {
            "postgres": f"{state.postgres.host}:{state.postgres.port}",
            "payments": f"{LOOPBACK}:{state.fake_ports['payments']}",
            "prices": f"{LOOPBACK}:{state.fake_ports['prices']}",
        }
        specs = [
            # Port 0: Toxiproxy binds a free port itself and reports it, so no race.
            ProxySpec(link.name, listen=f"{LOOPBACK}:0", upstream=upstreams[link.target])
            for link in LINKS
        ]

        async def create() -> None:
            async with ToxiproxyClient(tox.url) as client:
                for spec in specs:
                    proxy = await client.create_proxy(
                        spec.name, listen=spec.listen, upstream=spec.upstream
                    )
                    state.links[proxy.name] = LinkState(
                        listen=proxy.listen, upstream=proxy.upstream
                    )
                    self.store.save(state)

        asyncio.run(create())
        self.report(f"Toxiproxy: {len(state.links)} links created")

    def _start_fakes(self, state: StackState, plan: _Plan) -> None:
        """The provider fakes, each process recorded as soon as it exists (a process killed
        in between would leave one that nothing names)."""
        state.fake_ports = {"payments": free_port(), "prices": free_port()}
        self.report("fakes: starting the payment provider and the price source")

        def record(name: str, process: ProcessRecord) -> None:
            state.processes[name] = ProcessState.of(process)
            self.store.save(state)

        backend.start_fakes(state, self.state_dir, plan.ipn_secret, record)

    def _start_app(self, state: StackState, plan: _Plan) -> None:
        """The app, once its database exists and the fakes listen."""
        assert state.postgres is not None
        assert plan.app_port is not None
        settings = self.settings
        postgres.ensure_database(state.postgres.dsn, APP_DATABASE)
        backend.wait_fakes(
            state, {n: p.record() for n, p in state.processes.items()}, self.state_dir
        )
        admin_token = secrets.token_urlsafe(24)
        settings_file = self.state_dir / "app-settings.json"
        backend.write_settings(
            settings_file,
            backend.app_settings(
                state,
                variant=settings.app_variant,
                app_port=plan.app_port,
                admin_token=admin_token,
                ipn_secret=plan.ipn_secret,
                service_timeout=settings.app_service_timeout,
                overrides=self.app_overrides,
            ),
        )
        url = f"http://{LOOPBACK}:{plan.app_port}"
        state.app = AppState(
            url=url,
            port=plan.app_port,
            variant=settings.app_variant,
            workers=settings.app_workers,
            admin_token=admin_token,
            settings_file=settings_file,
        )
        log_path = self.state_dir / "logs" / "app.log"
        self.report(
            f"app: starting the {settings.app_variant} design with {settings.app_workers} "
            f"workers on {url}"
        )
        record = backend.start_app(
            settings_file, plan.app_port, settings.app_workers, log_path, self._app_temp
        )
        state.processes["app"] = ProcessState.of(record)
        self.store.save(state)
        backend.wait_app(url, record, log_path)

    # -- down ---------------------------------------------------------------------------------

    def down(self, *, drain: float = backend.DRAIN_SECONDS) -> bool:
        """Stop everything the state file names; False when nothing was recorded.

        The app gets ``drain`` seconds to finish its requests in flight before it is killed.
        """
        # the lock is taken once a Ctrl-C can no longer cut the stop short
        with deferred("finishing the stop"), self.store.locked():
            state = self.store.load()
            if state is None:
                return False
            self._down(state, drain)
            return True

    @property
    def _app_temp(self) -> Path:
        """The app's temporary files (``TMPDIR``), removed with the stack."""
        return self.state_dir / "app-tmp"

    def _down(self, state: StackState, drain: float = backend.DRAIN_SECONDS) -> None:
        """Stop the app and the fakes together, then Toxiproxy and PostgreSQL together (the
        app drains with its links and database still there)."""
        errors = self._stop_all([lambda: self._stop_processes(state, drain)])
        errors += self._stop_all(
            [lambda: self._stop_toxiproxy(state), lambda: self._stop_postgres(state)]
        )
        if errors:
            raise ComponentError("; ".join(errors), f"state kept in {self.store.path}")
        self.store.clear()

    @staticmethod
    def _stop_all(steps: list[Callable[[], list[str]]]) -> list[str]:
        """Run the stop steps at once; the problems they met, in order."""
        if len(steps) == 1:
            return steps[0]()
        with ThreadPoolExecutor(max_workers=len(steps)) as pool:
            return [error for errors in pool.map(lambda step: step(), steps) for error in errors]

    def _stop_processes(self, state: StackState, drain: float) -> list[str]:
        if not state.processes:
            return []
        try:
            backend.stop_all({n: p.record() for n, p in state.processes.items()}, drain=drain)
        except HarnessError as exc:
            return [str(exc)]
        shutil.rmtree(self._app_temp, ignore_errors=True)  # what a killed app left there
        if state.app is not None and not wait_closed(state.app.port, time.monotonic() + 5):
            return [f"app port {state.app.port} still listening"]
        self.report("app and fakes: stopped")
        return []

    def _stop_toxiproxy(self, state: StackState) -> list[str]:
        tox = state.toxiproxy
        errors: list[str] = []
        if tox is not None and tox.kind == "external" and state.links:
            try:
                asyncio.run(_delete_proxies(tox.url, list(state.links)))
            except HarnessError as exc:
                errors.append(str(exc))
        if tox is not None and tox.process is not None:
            try:
                stop(tox.process.record())
                if tox.port is not None and not wait_closed(tox.port, time.monotonic() + 5):
                    errors.append(f"Toxiproxy port {tox.port} still listening")
                self.report("Toxiproxy: stopped")
            except HarnessError as exc:
                errors.append(str(exc))
        return errors

    def _stop_postgres(self, state: StackState) -> list[str]:
        pg = state.postgres
        if pg is None or pg.kind != "local" or pg.data_dir is None:
            return []
        try:
            cluster = postgres.LocalCluster(
                pg.bin_dir or postgres.find_bin_dir(self.settings.pg_bin), pg.data_dir, pg.port
            )
            cluster.destroy()
        except HarnessError as exc:
            return [str(exc)]
        if not wait_closed(pg.port, time.monotonic() + 5):
            return [f"PostgreSQL port {pg.port} still listening"]
        self.report("PostgreSQL: stopped and removed")
        return []

    # -- status -------------------------------------------------------------------------------

    def load(self) -> StackState | None:
        """The recorded state, if a stack was started."""
        return self.store.load()

    def probe(self, state: StackState) -> list[ComponentStatus]:
        """Check every component of ``state`` from the outside."""
        found: list[ComponentStatus] = []
        pg = state.postgres
        if pg is None:
            found.append(ComponentStatus("postgres", False, "-", "not started"))
        else:
            found.append(_probe_pg("postgres", pg.dsn, f"{pg.host}:{pg.port}", pg.kind))
        tox = state.toxiproxy
        if tox is None:
            found.append(ComponentStatus("toxiproxy", False, "-", "not started"))
            return found
        try:
            version = toxiproxy_server.wait_ready(tox.url, timeout=1.0)
            proxies = toxiproxy_server.api_get(tox.url, "/proxies")
        except HarnessError as exc:
            found.append(ComponentStatus("toxiproxy", False, tox.url, exc.problem))
            return found
        found.append(ComponentStatus("toxiproxy", True, tox.url, f"{tox.kind}, version {version}"))
        assert isinstance(proxies, dict)
        for link in LINKS:
            recorded = state.links.get(link.name)
            proxy = proxies.get(link.name)
            if recorded is None or not isinstance(proxy, dict):
                found.append(ComponentStatus(f"link {link.name}", False, "-", "missing"))
                continue
            toxics = len(proxy.get("toxics") or [])
            flags = ("enabled" if proxy.get("enabled") else "DISABLED") + (
                f", {toxics} toxic(s)" if toxics else ""
            )
            address = f"{recorded.listen} -> {recorded.upstream}"
            if link.target == "postgres" and pg is not None:
                dsn = (
                    f"host={LOOPBACK} port={recorded.listen_port} user={_dsn_user(pg.dsn)} "
                    f"dbname=postgres"
                )
                probed = _probe_pg(f"link {link.name}", dsn, address, flags)
                found.append(probed)
            else:
                upstream_port = int(recorded.upstream.rsplit(":", 1)[1])
                up = is_listening(upstream_port)
                found.append(
                    ComponentStatus(
                        f"link {link.name}",
                        bool(proxy.get("enabled")) and up,
                        address,
                        flags + ("" if up else f"; nothing listens on {recorded.upstream}"),
                    )
                )
        found.extend(_probe_backend(state))
        return found


def _probe_backend(state: StackState) -> list[ComponentStatus]:
    found = []
    for name, target in (("payments_fake", "payments"), ("prices_fake", "prices")):
        port = state.fake_ports.get(target)
        process = state.processes.get(name)
        alive = process is not None and process.record().alive()
        listening = port is not None and is_listening(port)
        found.append(
            ComponentStatus(
                name.replace("_", " "),
                alive and listening,
                f"{LOOPBACK}:{port}",
                "running" if alive and listening else "not running",
            )
        )
    app = state.app
    if app is None:
        found.append(ComponentStatus("app", False, "-", "not started"))
        return found
    try:
        with urllib.request.urlopen(f"{app.url}/health/ready", timeout=3) as answer:  # noqa: S310
            detail = f"{app.variant}, {app.workers} workers, ready"
            healthy = answer.status == 200
    except urllib.error.HTTPError as exc:
        healthy, detail = False, f"{app.variant}: not ready ({exc.code})"
    except (urllib.error.URLError, OSError) as exc:
        healthy, detail = False, f"{app.variant}: no answer ({exc})"
    found.append(ComponentStatus("app", healthy, app.url, detail))
    return found


def _probe_pg(name: str, dsn: str, address: str, detail: str) -> ComponentStatus:
    try:
        postgres.ping(dsn, timeout=2.0)
    except HarnessError as exc:
        return ComponentStatus(name, False, address, f"{detail}; {exc.problem}")
    return ComponentStatus(name, True, address, detail)


def _dsn_user(dsn: str) -> str:
    return str(psycopg2.extensions.parse_dsn(dsn).get("user") or postgres.SUPERUSER)


def _check_no_clash(url: str) -> None:
    """Refuse an external Toxiproxy server that already has proxies of our links' names."""
    toxiproxy_server.connect(url)
    existing = toxiproxy_server.api_get(url, "/proxies")
    clash = sorted(set(existing) & LINK_NAMES) if isinstance(existing, dict) else []
    if clash:
        raise ComponentError(
            f"Toxiproxy at {url} already has proxies {', '.join(clash)}",
            "another stack uses that server: run `harness down` there or delete them",
        )


async def _delete_proxies(url: str, names: list[str]) -> None:
    async with ToxiproxyClient(url) as client:
        for name in names:
            with contextlib.suppress(ProxyNotFound):
                await client.delete_proxy(name)


def _ensure_free(port: int, what: str, variable: str) -> int:
    """Return ``port`` if a server can listen on it on loopback, else raise
    :class:`PortInUseError`. As PostgreSQL, Toxiproxy and the app do, with ``SO_REUSEADDR``:
    the connections a stack just stopped left in TIME_WAIT on it do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            raise PortInUseError(
                f"port {port} for {what} is already in use ({exc.strerror})",
                f"choose another port in {variable} or leave it unset to pick a free one",
            ) from exc
    return port
