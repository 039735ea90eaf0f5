"""A Chaos Toolkit extension: the harness's faults as actions, its invariants and health as
probes, against a running stack (``harness up``; its state folder is ``HARNESS_STATE_DIR``,
or the experiment's configuration ``harness_state_dir``).

    "method": [{"type": "action", "name": "cut P2P's database link",
                "provider": {"type": "python", "module": "isolation_harness.chaos.ctk",
                             "func": "apply_fault",
                             "arguments": {"fault": {"type": "link_down", "link": "pg_p2p"}}}}],
    "rollbacks": [{"type": "action", "name": "restore it",
                   "provider": {"type": "python", "module": "isolation_harness.chaos.ctk",
                                "func": "revert_fault",
                                "arguments": {"fault": {"type": "link_down", "link": "pg_p2p"}}}}]

A fault is any entry a scenario's phase may name. ``revert_fault`` with the same entry
reverts the fault ``apply_fault`` applied (in the same ``chaos run``), so it serves as a
rollback; a fault applied twice without a revert is refused. The probes:
``service_ready(service)`` (the app's ``/health/ready/<service>``: its database answers
through its own pool), ``invariants_hold(names)`` (the money invariants that read the
database: ``ledger_balanced``, ``no_negative_balance``, ``escrow_consistent``,
``connections_return_to_baseline``) and ``nothing_left_behind()`` (the residue check: no
toxic, disabled link, service or provider fault, stopped database). ``docs/ctk/`` has an
experiment, and its variant that deviates.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from isolation_harness.chaos.errors import ConfigError, HarnessError
from isolation_harness.chaos.faults import Fault, fault_of, residue
from isolation_harness.chaos.faults.driver import FaultLoop
from isolation_harness.chaos.invariants import REGISTRY, Facts, check_invariants
from isolation_harness.chaos.run.server import pool_capacity
from isolation_harness.chaos.stack import postgres
from isolation_harness.chaos.stack.lifecycle import Stack
from isolation_harness.chaos.stack.settings import Settings
from isolation_harness.chaos.stack.state import StackState
from isolation_harness.topology.services import APP_DATABASE, SERVICES

#: what a probe's or action's call to the app may take
HTTP_TIMEOUT = 5.0
#: the invariants a probe can check on a stack between runs: those that read the database
#: (the others judge a run's own requests, or the provider's book after a run)
PROBED = (
    "ledger_balanced",
    "no_negative_balance",
    "escrow_consistent",
    "connections_return_to_baseline",
)
CONFIGURATION_KEY = "harness_state_dir"

#: the faults applied by this process and not reverted yet, by their entry
_applied: dict[str, tuple[Fault, FaultLoop]] = {}


def apply_fault(fault: Mapping[str, Any], configuration: Mapping[str, Any] | None = None) -> str:
    """Apply ``fault`` (a scenario's fault entry) to the stack; what it did, in a line."""
    key = _key(fault)
    if key in _applied:
        raise ConfigError(f"fault {key} is applied already", "revert it first (revert_fault)")
    made = fault_of(fault)
    loop = FaultLoop(_stack(configuration)).open()
    try:
        loop.act(made.apply)
    except BaseException:
        try:
            loop.act(made.revert)
        finally:
            loop.close()
        raise
    _applied[key] = (made, loop)
    return made.describe(loop.ctx)


def revert_fault(fault: Mapping[str, Any], configuration: Mapping[str, Any] | None = None) -> str:
    """Revert the fault ``apply_fault`` applied with the same entry (a rollback: a fault
    never applied is reverted all the same, which undoes nothing)."""
    key = _key(fault)
    made, loop = _applied.pop(key, (None, None))
    if made is None or loop is None:
        made = fault_of(fault)
        loop = FaultLoop(_stack(configuration)).open()
    try:
        loop.act(made.revert)
    finally:
        loop.close()
    return f"reverted: {made.describe()}"


def service_ready(service: str, configuration: Mapping[str, Any] | None = None) -> bool:
    """The app's readiness of ``service``: its database answers through its own pool."""
    if service not in SERVICES:
        raise ConfigError(f"unknown service {service!r}", f"one of {', '.join(SERVICES)}")
    state = _stack(configuration)
    if state.app is None:
        raise ConfigError("the stack runs no app", "start it with `harness up`")
    url = f"{state.app.url.rstrip('/')}/health/ready/{service}"
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return False  # a 503 (not ready) or no answer


def invariants_hold(
    names: Sequence[str] = PROBED, configuration: Mapping[str, Any] | None = None
) -> bool:
    """Every invariant of ``names`` holds on the stack's database now."""
    return all(result["passed"] for result in invariants(names, configuration))


def invariants(
    names: Sequence[str] = PROBED, configuration: Mapping[str, Any] | None = None
) -> list[dict[str, object]]:
    """Each invariant of ``names``, checked now: passed, what it checked, its violations."""
    unknown = [n for n in names if n not in PROBED]
    if unknown:
        other = [n for n in unknown if n in REGISTRY]
        reason = (
            f"{', '.join(other)} judge a run's own requests or the provider's book: name "
            "them in a scenario"
            if other
            else f"unknown: {', '.join(unknown)}"
        )
        raise ConfigError(f"cannot probe {', '.join(unknown)}", f"{reason}; probe {PROBED}")
    state = _stack(configuration)
    if state.postgres is None:
        raise ConfigError("the stack runs no database", "start it with `harness up`")
    facts = Facts(cursor=None, capacity=pool_capacity(state), links=len(state.links))
    dsn = postgres.with_dbname(state.postgres.dsn, APP_DATABASE)
    return [result.as_dict() for result in check_invariants(dsn, list(names), facts)]


def nothing_left_behind(configuration: Mapping[str, Any] | None = None) -> bool:
    """No fault is in place on the stack (whoever left it)."""
    return not left_behind(configuration)


def left_behind(configuration: Mapping[str, Any] | None = None) -> list[str]:
    """Every fault in place on the stack, one line each (the residue check)."""
    with FaultLoop(_stack(configuration)) as loop:
        return loop.act(residue)


def _key(fault: Mapping[str, Any]) -> str:
    return json.dumps(dict(fault), sort_keys=True, separators=(",", ":"))


def _stack(configuration: Mapping[str, Any] | None) -> StackState:
    settings = Settings.from_env(os.environ)
    folder = (configuration or {}).get(CONFIGURATION_KEY)
    if folder:
        settings = settings.with_overrides(state_dir=Path(str(folder)))
    state = Stack(settings).load()
    if state is None:
        raise HarnessError(
            f"no stack in {settings.state_dir}",
            f"start one with `harness up` (HARNESS_STATE_DIR, or the configuration's "
            f"{CONFIGURATION_KEY}, names its folder)",
        )
    return state
