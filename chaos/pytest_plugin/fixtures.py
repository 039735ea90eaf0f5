"""Fixtures for a project's own tests against a running stack.

    def test_deposits_survive(harness_user, harness_app_url, harness_fault):
        alice = harness_user({"USDT": "100"})
        with harness_fault({"type": "link_down", "link": "pg_p2p"}):
            ...  # requests to harness_app_url with alice.headers

``harness_stack`` is the stack ``harness up`` keeps (``HARNESS_STATE_DIR``), used and never
stopped; without one, a stack of the session's own (each xdist worker its own), stopped at
the session's end. ``harness_fault`` applies a fault given as a scenario's entry, with the
same fault objects a scenario uses, reverts it when the block ends whatever happened in it,
then fails the test if anything is left behind on the stack (the residue check).
``toxiproxy`` is toxiproxy-python's client, bound to the stack's Toxiproxy server.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from toxiproxy import Toxiproxy

from isolation_harness.chaos.faults import Fault, fault_of, residue
from isolation_harness.chaos.faults.driver import FaultLoop
from isolation_harness.chaos.stack.lifecycle import Stack
from isolation_harness.chaos.stack.settings import Settings
from isolation_harness.chaos.stack.state import StackState
from isolation_harness.chaos.stack.throwaway import throwaway_stack

#: seconds an API call of a fixture may take
HTTP_TIMEOUT = 10.0


@dataclass(frozen=True)
class HarnessUser:
    """A user of the stack's app, signed up (and funded) by ``harness_user``."""

    user_id: str
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class FaultLeftBehind(AssertionError):
    """The stack was not as before once a fault of ``harness_fault`` was reverted."""


@pytest.fixture(scope="session")
def harness_stack() -> Iterator[StackState]:
    """The running stack: ``harness up``'s, or one of this session's own."""
    settings = Settings.from_env(os.environ)
    kept = Stack(settings)
    if kept.load() is not None:  # `harness up` keeps one: used, never stopped
        state, _ = kept.up()
        yield state
        return
    with throwaway_stack(settings) as (_, state):
        yield state


@pytest.fixture(scope="session")
def harness_app_url(harness_stack: StackState) -> str:
    """The app's base URL, without a trailing slash."""
    if harness_stack.app is None:
        pytest.fail("the stack runs no app (HARNESS_APP_URL points at none?)")
    return harness_stack.app.url.rstrip("/")


@pytest.fixture(scope="session")
def harness_admin_token(harness_stack: StackState) -> str:
    if harness_stack.app is None:
        pytest.fail("the stack runs no app")
    return harness_stack.app.admin_token


@pytest.fixture(scope="session")
def harness_toxiproxy_url(harness_stack: StackState) -> str:
    if harness_stack.toxiproxy is None:
        pytest.fail("the stack runs no Toxiproxy server")
    return harness_stack.toxiproxy.url


@pytest.fixture(name="toxiproxy", scope="session")
def toxiproxy_client(harness_toxiproxy_url: str) -> Toxiproxy:
    """toxiproxy-python's ``Toxiproxy``, bound to the stack's server (its API address is
    the library's one setting for the whole process)."""
    address = urlsplit(harness_toxiproxy_url)
    client = Toxiproxy()
    client.update_api_consumer(address.hostname, address.port)
    return client


@pytest.fixture
def harness_user(harness_app_url: str, harness_admin_token: str) -> Callable[..., HarnessUser]:
    """``harness_user({"USDT": "100"})``: a new user, funded from the treasury."""

    def make(funds: Mapping[str, str | int] | None = None, *, name: str = "") -> HarnessUser:
        username = name or f"user-{uuid.uuid4().hex[:12]}"
        made = _post(harness_app_url + "/api/users", {"username": username})
        user = HarnessUser(str(made["user_id"]), str(made["username"]), str(made["token"]))
        for currency, amount in (funds or {}).items():
            _post(
                harness_app_url + "/api/admin/credit",
                # the API takes amounts as decimal strings only
                {"user_id": user.user_id, "currency": currency, "amount": str(amount)},
                {"Authorization": f"Bearer {harness_admin_token}",
                 "Idempotency-Key": uuid.uuid4().hex},
            )  # fmt: skip
        return user

    return make


def _post(url: str, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Any:
    request = urllib.request.Request(  # noqa: S310  (the stack's own http:// URL)
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:  # noqa: S310
        return json.loads(response.read())


@pytest.fixture
def harness_fault(
    harness_stack: StackState,
) -> Callable[[Mapping[str, Any] | Fault], contextlib.AbstractContextManager[Fault]]:
    """``with harness_fault({"type": "toxic", "link": "pg_p2p", ...}):`` the fault acts in
    the block, and is reverted when it ends, whatever happened in it."""

    @contextlib.contextmanager
    def fault(entry: Mapping[str, Any] | Fault) -> Iterator[Fault]:
        made = fault_of(entry)
        with FaultLoop(harness_stack) as loop:
            loop.act(made.apply)
            try:
                yield made
            finally:
                loop.act(made.revert)
                left = loop.act(residue)
                if left:
                    raise FaultLeftBehind(
                        f"left behind once {made.describe()} was reverted: " + "; ".join(left)
                    )

    return fault
