"""The harness's Locust users: ``locust -f load/locustfile.py`` (no flags needed after
``harness up``: the host and the admin token come from the stack's state file).

Environment:

- ``HARNESS_MIX`` (``deposits=6,p2p=2,swap=2``): which kinds of users run, and their
  weights. Only the classes of the mix are defined here, so Locust runs no other. Without
  it: every kind but ``health`` and ``admin`` (:data:`DEFAULT_MIX`).
- ``HARNESS_ADMIN_TOKEN``: the app's admin token, for funding (default: the stack's).
- ``HARNESS_PAYMENTS_URL``: the payment-provider fake, which depositors ask to finish their
  payments (default: the stack's; without one, deposits are never paid).
- ``HARNESS_THINK_TIME`` (``0,0.3``): every user's pause between two tasks, in seconds,
  instead of each kind's own (``0``: none, as many requests in flight as users).
- ``HARNESS_SEED`` (``42``): the run's seed. Every user draws its decisions and its pauses
  from a ``Random`` of its own derived from it (``load/seeding.py``), so a run with the same
  seed replays every user's decisions. Unset: each process draws a seed of its own.
- ``HARNESS_SAMPLES_DIR``: write every request sample and every money-moving request
  (``load/recorder.py``, ``load/operations.py``) there, in every Locust process: local,
  master, worker; ``started-<pid>.json`` as its users are through ``on_start``; and
  ``spawned.json`` once every user is spawned (``load/samples.py``).

The process that runs the test (local or master) ends the run on ``SIGUSR1``
(``load.kinds.FINISH_SIGNAL``) as its run time running out would: the users finish the task
in hand and every sample is written. ``LoadRun.spawned`` and ``LoadRun.finish``
(``load/runner.py``) rest on both, so that a scenario's timeline starts and ends on Locust's
word rather than on a guess.

Every Locust process collects garbage less often (:data:`GC_THRESHOLDS`): each request
allocates hundreds of short-lived objects, and with Python's default the youngest
generation was collected every few requests, for about 7 % of the process's time
(`bench/loadgen_efficiency.py`). The objects still die young; the memory held between
collections stays a few megabytes.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]  # no stubs
from locust import User, events
from locust.env import Environment
from locust.event import EventHook
from locust.runners import MasterRunner, Runner, WorkerRunner

from isolation_harness.load.kinds import FINISH_SIGNAL, KINDS, parse_mix, parse_think_time
from isolation_harness.load.recorder import Recorder
from isolation_harness.load.samples import SPAWNED_FILE
from isolation_harness.load.seeding import Roster, parse_seed, random_seed
from isolation_harness.load.users.base import LoadContext, context_of
from isolation_harness.load.users.seeded import use_roster
from isolation_harness.load.users.stack import stack_app
from isolation_harness.topology.environment import (
    ENV_MIX,
    ENV_SAMPLES_DIR,
    ENV_SEED,
    ENV_THINK_TIME,
)

DEFAULT_MIX = "deposits=4,wallet=3,p2p=2,swap=2"
#: ``gc.set_threshold`` of every Locust process (Python's default: 700, 10, 10)
GC_THRESHOLDS = (20_000, 10, 10)
log = logging.getLogger(__name__)


def mix_from_env() -> dict[str, int]:
    """``HARNESS_MIX`` parsed, or the default mix; a bad mix stops Locust with the reason."""
    text = os.environ.get(ENV_MIX, "").strip() or DEFAULT_MIX
    try:
        return parse_mix(text)
    except ValueError as exc:
        raise SystemExit(f"{ENV_MIX}={text!r}: {exc}") from None


def think_time_from_env() -> tuple[float, float] | None:
    """``HARNESS_THINK_TIME`` parsed (None: each kind keeps its own); a bad one stops Locust."""
    text = os.environ.get(ENV_THINK_TIME, "").strip()
    if not text:
        return None
    try:
        return parse_think_time(text)
    except ValueError as exc:
        raise SystemExit(f"{ENV_THINK_TIME}={text!r}: {exc}") from None


def seed_from_env() -> int:
    """``HARNESS_SEED`` parsed, or a seed of this process's own; a bad one stops Locust."""
    text = os.environ.get(ENV_SEED, "").strip()
    if not text:
        seed = random_seed()
        log.info("no %s: this process seeds its users with %d", ENV_SEED, seed)
        return seed
    try:
        return parse_seed(text)
    except ValueError as exc:
        raise SystemExit(f"{ENV_SEED}={text!r}: {exc}") from None


def user_classes(
    mix: dict[str, int], think_time: tuple[float, float] | None = None
) -> dict[str, type[User]]:
    """The user class of each kind in the mix, weighted (a subclass: the original is kept),
    pausing ``think_time`` (min, max seconds) between tasks if given."""
    selected: dict[str, type[User]] = {}
    for kind, weight in mix.items():
        name = KINDS[kind]
        base: type[User] = getattr(import_module(f"isolation_harness.load.users.{kind}"), name)
        attributes: dict[str, Any] = {
            "weight": weight, "__module__": __name__, "__doc__": base.__doc__,
        }  # fmt: skip
        if think_time is not None:
            attributes["think_time"] = think_time
        attributes["on_start"] = _saying_when_started(base)
        selected[name] = type(name, (base,), attributes)
    return selected


def _saying_when_started(base: type[User]) -> Callable[[User], None]:
    """``base.on_start``, then a word to the recorder (``started-<pid>.json``): the runner
    starts the timeline when every user is signed up, not after a guessed delay."""

    def on_start(self: User) -> None:
        base.on_start(self)
        recorder = context_of(self.environment).recorder
        if recorder is not None:
            recorder.user_started()

    return on_start


# Locust runs every non-abstract User class among this module's globals: exactly the mix.
globals().update(user_classes(mix_from_env(), think_time_from_env()))
SEED = seed_from_env()


def _on_init(environment: Environment, runner: Runner | None = None, **_: Any) -> None:
    use_roster(environment, Roster(SEED))
    context = context_of(environment)
    if not environment.host:
        app = stack_app()
        if app is not None:
            environment.host = app.url
    folder = os.environ.get(ENV_SAMPLES_DIR, "").strip()
    if folder:
        _install_recorder(environment, context, Recorder(Path(folder)), _role(runner))
    if runner is not None and not isinstance(runner, WorkerRunner):
        _install_finish(environment, runner, Path(folder) if folder else None)


def _install_finish(environment: Environment, runner: Runner, folder: Path | None) -> None:
    """The process running the test (local or master) says when every user is spawned
    (``spawned.json``), and ends the run on :data:`FINISH_SIGNAL` as its run time would."""

    def on_spawned(user_count: int, **_: Any) -> None:
        if folder is not None:
            marker, partial = folder / SPAWNED_FILE, folder / f"{SPAWNED_FILE}.tmp"
            partial.write_text(json.dumps({"users": user_count, "at": time.time()}))
            partial.replace(marker)  # seen whole or not at all

    _listen(environment.events.spawning_complete, on_spawned)
    # As `--run-time` does: the users stop (finishing their task), then Locust shuts down.
    gevent.signal_handler(FINISH_SIGNAL, lambda: gevent.spawn(runner.quit))


def _install_recorder(
    environment: Environment, context: LoadContext, recorder: Recorder, role: str
) -> None:
    context.recorder = recorder
    _listen(environment.events.request, recorder.on_request)

    def on_cpu_warning(**_: Any) -> None:
        # Sticky: Locust resets its own flags when a new test starts in the same process.
        context.cpu_warning_seen = True

    def on_quitting(environment: Environment, **_: Any) -> None:
        if context.recorder is not recorder:
            return
        # Users may still be running when the quitting event fires: stop writing first.
        environment.events.request.remove_listener(recorder.on_request)  # type: ignore[no-untyped-call]
        context.recorder = None
        recorder.close(cpu_warning=_cpu_warning(environment.runner, context), role=role)

    _listen(environment.events.cpu_warning, on_cpu_warning)
    _listen(environment.events.quitting, on_quitting)


def _listen(hook: EventHook, listener: Callable[..., None]) -> None:
    hook.add_listener(listener)  # type: ignore[no-untyped-call]  # untyped in Locust


def _role(runner: Runner | None) -> str:
    if isinstance(runner, MasterRunner):
        return "master"
    if isinstance(runner, WorkerRunner):
        return "worker"
    return "local"


def _cpu_warning(runner: Runner | None, context: LoadContext) -> bool:
    """Whether Locust warned of CPU saturation here (a master: on any of its workers too)."""
    return bool(
        context.cpu_warning_seen
        or getattr(runner, "cpu_warning_emitted", False)
        or getattr(runner, "worker_cpu_warning_emitted", False)
    )


_listen(events.init, _on_init)
gc.set_threshold(*GC_THRESHOLDS)
