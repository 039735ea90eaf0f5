"""Depositors: create deposit addresses (a fresh Idempotency-Key each), read them back, and,
as the payer, have the provider finish some of the payments, so that its IPNs credit them.

Paying goes through the payment-provider fake's control API
(``POST /_control/payments/{id}/progress`` with ``{"status": "finished", "through": true}``),
at the URL in ``HARNESS_PAYMENTS_URL``: the fake walks the payment to ``finished`` and sends
the app one IPN per step. Without that URL depositors never pay.
"""

from __future__ import annotations

import contextlib
import json
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from locust import task
from locust.env import Environment

from isolation_harness.load.operations import ACKNOWLEDGED, FAILED, INDETERMINATE, Outcome
from isolation_harness.load.users.base import Funding, HarnessUser, random_amount

#: currency -> (smallest, largest) amount of a deposit, in the currency's units. No USDT:
#: the app sends it to the provider as "usdt", which the provider refuses (it knows
#: "usdttrc20"), and the app answers 503, so every USDT deposit would fail.
DEPOSIT_RANGES: dict[str, tuple[Decimal, Decimal]] = {
    "BTC": (Decimal("0.0001"), Decimal("0.05")),
    "ETH": (Decimal("0.001"), Decimal("1.5")),
}
#: what the answer to a deposit's creation documents
DEPOSIT_FIELDS = ("id", "user_id", "currency", "amount", "status", "provider_payment_id")
#: what the fake answers to ``progress``
PROGRESS_FIELDS = ("payment", "ipn")


@dataclass(frozen=True)
class Created:
    """A deposit the app acknowledged, with the values this client sent for it."""

    deposit_id: str
    payment_id: str
    currency: str
    amount: str


class DepositorUser(HarnessUser):
    """Creates deposits, pays some of them at the provider, reads them back or lists them."""

    accounts_funding: ClassVar[Funding] = {"user": {"USDT": "10"}}

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.deposit_ids: deque[str] = deque(maxlen=50)
        self.unpaid: deque[Created] = deque(maxlen=50)

    @task(6)
    def create_deposit(self) -> None:
        currency = self.random.choice(list(DEPOSIT_RANGES))
        amount = random_amount(self.random, *DEPOSIT_RANGES[currency])
        reply = self.money_call(
            "deposit.create", {"user_id": self.account.user_id, "currency": currency,
                               "amount": amount},
            "POST", "/api/nowpayments/create-deposit", "deposits.create", service="deposits",
            token=self.account.token, idempotent=True,
            json={"currency": currency, "amount": amount},
            requires=DEPOSIT_FIELDS, returns=("id", "provider_payment_id"),
        )  # fmt: skip
        if reply.ok:
            deposit_id = str(reply.body["id"])
            self.deposit_ids.append(deposit_id)
            payment_id = str(reply.body["provider_payment_id"])
            self.unpaid.append(Created(deposit_id, payment_id, currency, amount))

    @task(1)
    def pay_deposit(self) -> None:
        """Pay a deposit: the newest or, as often, the oldest one still unpaid (a payer who
        takes their time: past the app's expiry when that is short)."""
        if self.shared.payments_url is None or not self.unpaid:
            self.read_deposit()
            return
        deposit = self.unpaid.pop() if self.random.random() < 0.5 else self.unpaid.popleft()
        self.pay(deposit)

    def pay(self, deposit: Created) -> Outcome:
        """Have the provider finish the deposit's payment; the IPNs credit the wallet."""
        op = self.shared.invoke(
            "deposit.pay",
            {"deposit_id": deposit.deposit_id, "user_id": self.account.user_id,
             "currency": deposit.currency, "amount": deposit.amount},
            self.label,
        )  # fmt: skip
        url = f"{self.shared.payments_url}/_control/payments/{deposit.payment_id}/progress"
        body = {"status": "finished", "through": True}
        with self.client.request(
            "POST", url, name="provider.pay", json=body, catch_response=True
        ) as response:
            status = int(getattr(response, "status_code", 0) or 0)
            outcome, problem = _paid(status, response.text if status else None)
            if problem is None:
                response.success()
            else:
                response.failure(problem)
        self.shared.complete(op, outcome, status, problem, {"payment_id": deposit.payment_id})
        return outcome

    @task(2)
    def read_deposit(self) -> None:
        if not self.deposit_ids:
            self.create_deposit()
            return
        deposit_id = self.random.choice(self.deposit_ids)
        self.call(
            "GET", f"/api/nowpayments/deposits/{deposit_id}", "deposits.get",
            token=self.account.token,
        )  # fmt: skip

    @task(1)
    def list_deposits(self) -> None:
        self.call(
            "GET", "/api/nowpayments/deposits?limit=20", "deposits.list",
            token=self.account.token,
        )  # fmt: skip


def _paid(status: int, text: str | None) -> tuple[Outcome, str | None]:
    """The outcome of a payment at the provider, and what went wrong if anything.

    Acknowledged: the app answered the ``finished`` IPN with a 2xx, so it must credit the
    deposit. Failed: the provider refused to move the payment (a 4xx): no IPN was sent.
    Indeterminate otherwise: the IPN went unanswered or was refused, and the provider
    retries it (the runner does, once the load stopped), or no answer came at all.
    """
    if status == 0:
        return INDETERMINATE, "no answer from the payment provider"
    if 400 <= status < 500:
        return FAILED, f"the payment provider refused: HTTP {status}"
    body: Any = None
    with contextlib.suppress(ValueError):
        body = json.loads(text or "")
    if status != 200 or not isinstance(body, dict) or any(f not in body for f in PROGRESS_FIELDS):
        return INDETERMINATE, f"HTTP {status} from the payment provider without its report"
    ipn = body["ipn"] if isinstance(body["ipn"], dict) else {}
    if ipn.get("delivered") is True:
        return ACKNOWLEDGED, None
    return INDETERMINATE, f"the finished IPN was not delivered: {ipn.get('error') or ipn}"
