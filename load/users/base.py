"""What every simulated user shares: its accounts, calls that judge their own answer, acks.

Failure accounting, the same for every user: a 2xx with a JSON object body is a success; an
answer the caller lists as expected (a domain refusal such as 409 insufficient funds, 410
expired quote) is a success too; anything else (another 4xx, a 5xx, no answer) is a failure.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from locust import between
from locust.contrib.fasthttp import ResponseContextManager
from locust.env import Environment

from load.recorder import Recorder
from load.users.api import ApiUser
from load.users.stack import admin_token

log = logging.getLogger(__name__)

#: an expected refusal: any answer with this status, or only this (status, error code)
Expected = int | tuple[int, str]
#: the accounts a user opens on start: role -> funds credited to it ({currency: amount})
Funding = Mapping[str, Mapping[str, str]]

_CONTEXT_ATTRIBUTE = "harness_load"


@dataclass
class LoadContext:
    """What the users of one Locust process share; lives on the Locust ``Environment``."""

    admin_token: str | None
    recorder: Recorder | None = None
    #: disputed trades waiting for an admin's decision (p2p traders add, admins take)
    disputes: deque[str] = field(default_factory=lambda: deque(maxlen=1000))
    #: Locust reported CPU saturation of this process at least once
    cpu_warning_seen: bool = False

    def ack(self, kind: str, **fields: Any) -> None:
        """Record an acknowledged call that created or moved money (no-op without recorder)."""
        if self.recorder is not None:
            self.recorder.ack(kind, **fields)


def context_of(environment: Environment) -> LoadContext:
    """The environment's shared context, made on first use (admin token from env or stack)."""
    found = getattr(environment, _CONTEXT_ATTRIBUTE, None)
    if isinstance(found, LoadContext):
        return found
    context = LoadContext(admin_token=admin_token())
    if context.admin_token is None:
        log.warning(
            "no admin token (set HARNESS_ADMIN_TOKEN or run `harness up`): users start unfunded"
        )
    setattr(environment, _CONTEXT_ATTRIBUTE, context)
    return context


@dataclass(frozen=True)
class Account:
    """A user of the app, as the app answered its creation."""

    user_id: str
    token: str


@dataclass(frozen=True)
class Reply:
    """An answer as a user sees it: ``ok`` is a 2xx with a JSON object body."""

    status: int
    body: dict[str, Any]
    ok: bool

    @property
    def code(self) -> str | None:
        """The error code of the app's error body."""
        error = self.body.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        return code if isinstance(code, str) else None

    def text(self, name: str) -> str | None:
        """A string field of the body (ids and decimal amounts), exactly as the app sent it."""
        value = self.body.get(name)
        return value if isinstance(value, str) else None


def fields_of(reply: Reply, *names: str) -> dict[str, Any]:
    """The named fields of an answer, as sent (for acks: ids and decimal strings untouched)."""
    return {name: reply.body.get(name) for name in names}


def random_amount(low: Decimal, high: Decimal) -> str:
    """A decimal string between ``low`` and ``high``, with ``low``'s decimal places."""
    exponent = int(low.as_tuple().exponent)
    steps = int((high - low).scaleb(-exponent))
    return str(low + Decimal(random.randint(0, steps)).scaleb(exponent))


class HarnessUser(ApiUser):
    """A user with accounts of its own, funded by the admin when it starts."""

    abstract = True
    wait_time = between(0.05, 0.3)
    accounts_funding: ClassVar[Funding] = {"user": {}}

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.shared = context_of(environment)
        self.accounts: dict[str, Account] = {}

    def on_start(self) -> None:
        # During a fault sign-up may fail: keep trying at the user's pace (each attempt is
        # a sample) rather than letting the user die.
        while not self.open_accounts():
            self.wait()  # type: ignore[no-untyped-call]  # untyped in Locust

    # -- accounts -------------------------------------------------------------------------

    def open_accounts(self) -> bool:
        """Open and fund every missing account; False if one could not be opened."""
        for role, funds in self.accounts_funding.items():
            if role in self.accounts:
                continue
            account = self.sign_up(role)
            if account is None:
                return False
            self.accounts[role] = account
            for currency, amount in funds.items():
                self.fund(account, currency, amount)
        return True

    @property
    def account(self) -> Account:
        """The account of a user with one role (``user``)."""
        return self.accounts["user"]

    def sign_up(self, role: str) -> Account | None:
        """``POST /api/users`` with a fresh username."""
        reply = self.call(
            "POST", "/api/users", "users.create", json={"username": f"{role}_{uuid.uuid4().hex}"}
        )
        user_id, token = reply.text("user_id"), reply.text("token")
        if not reply.ok or user_id is None or token is None:
            return None
        return Account(user_id, token)

    def fund(self, account: Account, currency: str, amount: str) -> bool:
        """Credit the account from the treasury through the admin API (acked).

        Without an admin token nothing is sent: the user runs unfunded (warned once).
        """
        if self.shared.admin_token is None:
            return False
        reply = self.call(
            "POST", "/api/admin/credit", "admin.credit", token=self.shared.admin_token,
            json={"user_id": account.user_id, "currency": currency, "amount": amount},
            idempotent=True,
        )  # fmt: skip
        if reply.ok:
            self.ack(
                "admin.credit",
                **fields_of(reply, "transaction_id", "user_id", "currency", "amount",
                                "replayed"),
            )  # fmt: skip
        return reply.ok

    # -- calls ----------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        name: str,
        *,
        token: str | None = None,
        json: Any = None,
        idempotent: bool = False,
        expected: Collection[Expected] = (),
    ) -> Reply:
        """One request, reported under ``name`` and judged (see the module's docstring).

        ``idempotent`` sends a fresh ``Idempotency-Key``; ``expected`` lists the refusals
        that are a success: a status, or a ``(status, error code)`` pair.
        """
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if idempotent:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        with self.client.request(
            method, path, name=name, json=json, headers=headers, catch_response=True
        ) as response:
            return _judge(response, expected)

    def ack(self, kind: str, **fields: Any) -> None:
        self.shared.ack(kind, **fields)


def _judge(response: ResponseContextManager, expected: Collection[Expected]) -> Reply:
    status = int(getattr(response, "status_code", 0) or 0)
    if status == 0:
        # No answer (connection refused or reset, timeout): report the client's own error.
        error = response.request_meta.get("exception")
        _settle(response, error if isinstance(error, Exception) else "no answer")
        return Reply(0, {}, ok=False)
    body = _json_object(response)
    if 200 <= status < 300:
        if body is None:
            _settle(response, f"HTTP {status} with a body that is not a JSON object")
            return Reply(status, {}, ok=False)
        _settle(response, None)
        return Reply(status, body, ok=True)
    reply = Reply(status, body or {}, ok=False)
    if status in expected or (status, reply.code) in expected:
        _settle(response, None)
    else:
        _settle(response, f"HTTP {status} {reply.code or ''}".rstrip())
    return reply


def _settle(response: ResponseContextManager, failure: Exception | str | None) -> None:
    """Report the request as a success (``failure`` None) or a failure, whatever its status."""
    if failure is None:
        response.success()  # type: ignore[no-untyped-call]  # untyped in Locust
    else:
        response.failure(failure)  # type: ignore[no-untyped-call]


def _json_object(response: ResponseContextManager) -> dict[str, Any] | None:
    try:
        body = json.loads(response.text or "")
    except (ValueError, TypeError):
        return None
    return body if isinstance(body, dict) else None
