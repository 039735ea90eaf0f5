"""What every simulated user shares: its accounts, calls that judge their own answer, and
the client's record of every money-moving request (``load/operations.py``).

Failure accounting, the same for every user: a 2xx with a JSON object body holding every
field the call documents is a success; an answer the caller lists as expected (a domain
refusal such as 409 insufficient funds, 410 expired quote) is a success too; anything else
(another 4xx, a 5xx, no answer, a 2xx lacking a documented field) is a failure.
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

from locust.contrib.fasthttp import ResponseContextManager
from locust.env import Environment

from isolation_harness.load.operations import OPERATION_KINDS, Outcome, outcome_of
from isolation_harness.load.recorder import Recorder
from isolation_harness.load.users.api import ApiUser
from isolation_harness.load.users.stack import admin_token, payments_url

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
    #: the payment-provider fake's base URL (its control API), for depositors paying
    payments_url: str | None = None
    #: disputed trades waiting for an admin's decision (p2p traders add, admins take)
    disputes: deque[str] = field(default_factory=lambda: deque(maxlen=1000))
    #: Locust reported CPU saturation of this process at least once
    cpu_warning_seen: bool = False

    def invoke(self, kind: str, sent: Mapping[str, Any], user: str | None = None) -> str:
        """Record a money-moving request before it goes out; returns its operation id.

        ``sent`` holds the fields :data:`~load.operations.OPERATION_KINDS` names for
        ``kind``, and the ``key`` sent if any (a mismatch is a bug of the user, raised);
        ``user`` names the simulated user sending it (``deposits#0.3``).
        """
        expected = set(OPERATION_KINDS[kind].fields)
        if not expected <= set(sent) <= expected | {"key"}:
            raise ValueError(f"{kind} sends {sorted(expected)}, not {sorted(sent)}")
        op = uuid.uuid4().hex
        if self.recorder is not None:
            self.recorder.invoke(op, kind, dict(sent), user)
        return op

    def complete(
        self,
        op: str,
        outcome: Outcome,
        status: int,
        detail: str | None,
        returned: Mapping[str, Any] | None = None,
    ) -> None:
        """Record how the request ``op`` ended (no-op without recorder)."""
        if self.recorder is not None:
            self.recorder.complete(op, outcome, status, detail, dict(returned or {}))


def context_of(environment: Environment) -> LoadContext:
    """The environment's shared context, made on first use (admin token from env or stack)."""
    found = getattr(environment, _CONTEXT_ATTRIBUTE, None)
    if isinstance(found, LoadContext):
        return found
    context = LoadContext(admin_token=admin_token(), payments_url=payments_url())
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
    """An answer as a user sees it: ``ok`` is a 2xx with a JSON object body holding every
    documented field; ``problem`` says what was wrong with any other answer."""

    status: int
    body: dict[str, Any]
    ok: bool
    problem: str | None = None

    @property
    def code(self) -> str | None:
        """The error code of the app's error body."""
        return self._error_field("code")

    @property
    def service(self) -> str | None:
        """The service the app's error body names."""
        return self._error_field("service")

    def _error_field(self, name: str) -> str | None:
        error = self.body.get("error")
        value = error.get(name) if isinstance(error, dict) else None
        return value if isinstance(value, str) else None

    def text(self, name: str) -> str | None:
        """A string field of the body (ids and decimal amounts), exactly as the app sent it."""
        value = self.body.get(name)
        return value if isinstance(value, str) else None


def random_amount(chance: random.Random, low: Decimal, high: Decimal) -> str:
    """A decimal string between ``low`` and ``high``, with ``low``'s decimal places, drawn
    from ``chance`` (a user's own ``random``)."""
    exponent = int(low.as_tuple().exponent)
    steps = int((high - low).scaleb(-exponent))
    return format(low + Decimal(chance.randint(0, steps)).scaleb(exponent), "f")


class HarnessUser(ApiUser):
    """A user with accounts of its own, funded by the admin when it starts."""

    abstract = True
    think_time = (0.05, 0.3)
    accounts_funding: ClassVar[Funding] = {"user": {}}

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.shared = context_of(environment)
        self.accounts: dict[str, Account] = {}

    def on_start(self) -> None:
        super().on_start()
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
        """Credit the account from the treasury through the admin API (recorded).

        Without an admin token nothing is sent: the user runs unfunded (warned once).
        """
        if self.shared.admin_token is None:
            return False
        sent = {"user_id": account.user_id, "currency": currency, "amount": amount}
        reply = self.money_call(
            "admin.credit", sent, "POST", "/api/admin/credit", "admin.credit", service="wallet",
            token=self.shared.admin_token, json=sent, idempotent=True,
            requires=MOVED_FIELDS, returns=("transaction_id",),
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
        idempotency_key: str | None = None,
        expected: Collection[Expected] = (),
        requires: Collection[str] = (),
    ) -> Reply:
        """One request, reported under ``name`` and judged (see the module's docstring).

        ``idempotency_key`` is sent as ``Idempotency-Key``; ``expected`` lists the refusals
        that are a success: a status, or a ``(status, error code)`` pair; ``requires`` the
        fields a 2xx answer must hold (the call's documented answer).
        """
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        with self.client.request(
            method, path, name=name, json=json, headers=headers, catch_response=True
        ) as response:
            return _judge(response, expected, requires)

    def money_call(
        self,
        kind: str,
        sent: Mapping[str, Any],
        method: str,
        path: str,
        name: str,
        *,
        service: str,
        idempotent: bool = False,
        returns: Collection[str] = (),
        **call: Any,
    ) -> Reply:
        """A request that creates or moves money: recorded before it goes out with the
        values it sends (``sent``, plus the fresh ``Idempotency-Key`` if ``idempotent``),
        then with its outcome and the ids named in ``returns`` that the answer holds.

        ``service`` is the service that answers the call: a 503 proves nothing was written
        only when that service itself says so (:func:`~load.operations.outcome_of`).
        """
        key = uuid.uuid4().hex if idempotent else None
        op = self.shared.invoke(kind, {**sent, **({"key": key} if key else {})}, self.label)
        reply = self.call(method, path, name, idempotency_key=key, **call)
        outcome = outcome_of(reply.status, reply.ok, reply.code, reply.service, service)
        returned = {field: reply.body.get(field) for field in returns}
        self.shared.complete(op, outcome, reply.status, reply.problem, returned)
        return reply


#: what every answer of a call that moved money documents
MOVED_FIELDS = ("transaction_id", "currency", "amount", "replayed")


def _judge(
    response: ResponseContextManager, expected: Collection[Expected], requires: Collection[str]
) -> Reply:
    status = int(getattr(response, "status_code", 0) or 0)
    if status == 0:
        # No answer (connection refused or reset, timeout): report the client's own error.
        error = response.request_meta.get("exception")
        failure = error if isinstance(error, Exception) else "no answer"
        _settle(response, failure)
        return Reply(0, {}, ok=False, problem=_text(failure))
    body = _json_object(response)
    if 200 <= status < 300:
        if body is None:
            problem = f"HTTP {status} with a body that is not a JSON object"
            _settle(response, problem)
            return Reply(status, {}, ok=False, problem=problem)
        missing = [name for name in requires if body.get(name) is None]
        if missing:
            # The server may have done it: the caller must not take this for a success.
            problem = f"HTTP {status} without the documented field {missing[0]!r}"
            _settle(response, problem)
            return Reply(status, body, ok=False, problem=problem)
        _settle(response, None)
        return Reply(status, body, ok=True)
    reply = Reply(status, body or {}, ok=False)
    problem = f"HTTP {status} {reply.code or ''}".rstrip()
    if reply.service:
        problem += f" ({reply.service})"
    if status in expected or (status, reply.code) in expected:
        _settle(response, None)
    else:
        _settle(response, problem)
    return Reply(status, reply.body, ok=False, problem=problem)


def _text(failure: Exception | str) -> str:
    if isinstance(failure, Exception):
        return f"{type(failure).__name__}: {failure}" if str(failure) else type(failure).__name__
    return failure


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
