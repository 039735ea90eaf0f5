"""Depositors: create deposit addresses (a fresh Idempotency-Key each), read them back."""

from __future__ import annotations

import random
from collections import deque
from decimal import Decimal
from typing import ClassVar

from locust import task
from locust.env import Environment

from load.users.base import Funding, HarnessUser, fields_of, random_amount

#: currency -> (smallest, largest) amount of a deposit, in the currency's units. No USDT:
#: the app sends it to the provider as "usdt", which the provider refuses (it knows
#: "usdttrc20"), and the app answers 503, so every USDT deposit would fail.
DEPOSIT_RANGES: dict[str, tuple[Decimal, Decimal]] = {
    "BTC": (Decimal("0.0001"), Decimal("0.05")),
    "ETH": (Decimal("0.001"), Decimal("1.5")),
}


class DepositorUser(HarnessUser):
    """Creates deposits and sometimes reads one back or lists them."""

    accounts_funding: ClassVar[Funding] = {"user": {"USDT": "10"}}

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.deposit_ids: deque[str] = deque(maxlen=50)

    @task(6)
    def create_deposit(self) -> None:
        currency = random.choice(list(DEPOSIT_RANGES))
        reply = self.call(
            "POST", "/api/nowpayments/create-deposit", "deposits.create",
            token=self.account.token, idempotent=True,
            json={"currency": currency, "amount": random_amount(*DEPOSIT_RANGES[currency])},
        )  # fmt: skip
        deposit_id = reply.text("id")
        if reply.ok and deposit_id is not None:
            self.deposit_ids.append(deposit_id)
            self.ack(
                "deposit.create", deposit_id=deposit_id,
                **fields_of(reply, "user_id", "currency", "amount", "status",
                                "provider_payment_id", "replayed"),
            )  # fmt: skip

    @task(2)
    def read_deposit(self) -> None:
        if not self.deposit_ids:
            self.create_deposit()
            return
        deposit_id = random.choice(self.deposit_ids)
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
