"""The reference backend as the stack runs it: the two provider fakes and the app, as processes.

Every connection of the app goes through its link: each service's pool through its own
``pg_<service>`` proxy (the legacy design's one pool through ``pg_shared``), the provider
through ``payments`` and the price source through ``prices``.
"""

from __future__ import annotations

import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from isolation_harness.chaos.errors import ComponentError, NotReadyError
from isolation_harness.chaos.stack import postgres
from isolation_harness.chaos.stack.process import ProcessRecord, spawn_detached, stop
from isolation_harness.chaos.stack.state import StackState
from isolation_harness.reference_app.settings import AppSettings, PoolSettings
from isolation_harness.topology.links import SHARED_LINK, database_link
from isolation_harness.topology.ports import LOOPBACK, is_listening
from isolation_harness.topology.services import (
    APP_DATABASE,
    LEGACY_ROLE,
    SERVICES,
    Variant,
    role_of,
)

#: pool sizes per worker: the source document's 10..50 for the busiest service
POOLS: dict[str, dict[str, int]] = {
    "deposits": {"min_size": 10, "max_size": 50},
    "wallet": {"min_size": 2, "max_size": 20},
    "p2p": {"min_size": 2, "max_size": 10},
    "swap": {"min_size": 2, "max_size": 10},
    "express": {"min_size": 1, "max_size": 10},
    "admin": {"min_size": 1, "max_size": 5},
    "background": {"min_size": 1, "max_size": 5},
}
ACQUIRE_TIMEOUT = 2.0
#: the key the app calls the payment-provider fake with
PAYMENTS_API_KEY = "harness-payments-key"
#: each payment fake's ids: a block of 2**20 (a million payments) at a random place
PAYMENT_ID_BLOCK_BITS = 20
READY_TIMEOUT = 60.0
#: seconds a process of the backend gets to stop by itself before it is killed
DRAIN_SECONDS = 15.0


def app_settings(
    state: StackState,
    *,
    variant: Variant,
    app_port: int,
    admin_token: str,
    ipn_secret: str,
    service_timeout: float,
    overrides: Mapping[str, Any] | None = None,
) -> AppSettings:
    """The app's settings for this stack, with a scenario's ``overrides`` (validated here, as
    the app will validate them when it starts)."""
    assert state.postgres is not None
    admin_dsn = postgres.with_dbname(state.postgres.dsn, APP_DATABASE)

    def through(link: str, role: str, pool: dict[str, int]) -> PoolSettings:
        port = state.links[link].listen_port
        return PoolSettings(
            dsn=f"host={LOOPBACK} port={port} user={role} dbname={APP_DATABASE}",
            acquire_timeout=ACQUIRE_TIMEOUT,
            **pool,
        )

    wired = AppSettings(
        architecture=variant,
        databases={s: through(database_link(s), role_of(s), POOLS[s]) for s in SERVICES},
        legacy_database=through(SHARED_LINK, LEGACY_ROLE, POOLS["deposits"]),
        admin_dsn=admin_dsn,
        service_timeout=service_timeout,
        admin_token=admin_token,
        token_secret=secrets.token_hex(16),
        fault_api=True,
        payments_url=f"http://{LOOPBACK}:{state.links['payments'].listen_port}",
        payments_api_key=PAYMENTS_API_KEY,
        ipn_secret=ipn_secret,
        public_url=f"http://{LOOPBACK}:{app_port}",
        prices_url=f"http://{LOOPBACK}:{state.links['prices'].listen_port}",
    )
    if not overrides:
        return wired
    return AppSettings.model_validate({**wired.model_dump(), **overrides})


def first_payment_id() -> int:
    """Where a new payment fake starts counting its payment ids: a random block of its own.

    Each fake counts from where it starts, and on an existing server (``HARNESS_PG_DSN``)
    the app's database outlives the stack: a second stack's fake counting from the same
    number would hand out ids the deposits already hold (seen: every deposit of the second
    stack refused with a 500 on the unique provider id).
    """
    return (secrets.randbelow(1 << 27) + 1) << PAYMENT_ID_BLOCK_BITS


def start_fakes(
    state: StackState,
    state_dir: Path,
    ipn_secret: str,
    on_spawn: Callable[[str, ProcessRecord], None],
) -> None:
    """Start the payment-provider and price-source fakes on their reserved ports;
    ``on_spawn(name, record)`` as soon as each exists, before the next one is started."""
    logs = state_dir / "logs"
    on_spawn("payments_fake", spawn_detached(
        [sys.executable, "-m", "isolation_harness.reference_app.fakes.payments", "--host", LOOPBACK,
         "--port", str(state.fake_ports["payments"]), "--api-key", PAYMENTS_API_KEY,
         "--ipn-secret", ipn_secret, "--first-payment-id", str(first_payment_id())],
        logs / "payments-fake.log",
    ))  # fmt: skip
    on_spawn("prices_fake", spawn_detached(
        [sys.executable, "-m", "isolation_harness.reference_app.fakes.prices", "--host", LOOPBACK,
         "--port", str(state.fake_ports["prices"])],
        logs / "prices-fake.log",
    ))  # fmt: skip


def wait_fakes(state: StackState, records: dict[str, ProcessRecord], state_dir: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    for name, port in (("payments_fake", state.fake_ports["payments"]),
                       ("prices_fake", state.fake_ports["prices"])):  # fmt: skip
        while not is_listening(port):
            if not records[name].alive():
                log = state_dir / "logs" / (name.replace("_", "-") + ".log")
                raise ComponentError(
                    f"the {name.replace('_', ' ')} exited at start ({last_words(log)})",
                    f"see {log}",
                )
            if time.monotonic() > deadline:
                raise NotReadyError(f"the {name.replace('_', ' ')} did not listen on {port}")
            time.sleep(0.05)


def start_app(
    settings_file: Path, port: int, workers: int, log_path: Path, temp_dir: Path
) -> ProcessRecord:
    """Start ``python -m isolation_harness.reference_app`` with ``workers`` processes on
    ``port``, its temporary files in ``temp_dir`` (gone with the stack, even if the app is
    killed)."""
    temp_dir.mkdir(parents=True, exist_ok=True)
    return spawn_detached(
        [sys.executable, "-m", "isolation_harness.reference_app", "--config", str(settings_file),
         "--host", LOOPBACK, "--port", str(port), "--workers", str(workers)],
        log_path,
        env={"TMPDIR": str(temp_dir)},
    )  # fmt: skip


def wait_app(url: str, record: ProcessRecord, log_path: Path) -> None:
    """Poll ``/health/ready`` until every service answers."""
    deadline = time.monotonic() + READY_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if not record.alive():
            raise ComponentError(
                f"the app exited at start ({last_words(log_path)})", f"see {log_path}"
            )
        try:
            with urllib.request.urlopen(f"{url}/health/ready", timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"{exc.code}: {exc.read()[:200]!r}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.05)
    raise NotReadyError(f"the app at {url} was not ready after {READY_TIMEOUT:g} s ({last})")


def write_settings(path: Path, settings: AppSettings) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(settings.model_dump_json(indent=2))
    path.chmod(0o600)  # it holds the admin token


def read_settings(path: Path) -> AppSettings:
    """The settings file a stack's app was started with."""
    return AppSettings.model_validate_json(path.read_text())


def stop_all(records: dict[str, ProcessRecord], *, drain: float = DRAIN_SECONDS) -> None:
    """Stop the app and the fakes, all at once; the app gets ``drain`` seconds to finish
    its requests in flight before it is killed, its workers with it."""
    graces = {"app": drain, "payments_fake": DRAIN_SECONDS, "prices_fake": DRAIN_SECONDS}
    started = [(record, graces[name]) for name, record in records.items() if name in graces]
    with ThreadPoolExecutor(max_workers=max(1, len(started))) as pool:
        stops = [pool.submit(stop, record, grace=grace) for record, grace in started]
        for done in stops:
            done.result()  # the first ComponentError, once every stop has ended


def last_words(log: Path) -> str:
    """The last line a process wrote to its log: the reason it died, in the error itself
    (a run's throw-away state folder, logs included, is gone when the error is read)."""
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip()[:300] if lines else "it wrote nothing"
