"""Wallet users: balances, the ledger, small withdrawals (running dry now and then)."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from locust import task

from isolation_harness.load.users.base import MOVED_FIELDS, Funding, HarnessUser, random_amount

#: withdrawals outpace the top-ups, so the insufficient-funds answer is exercised too
WITHDRAWAL = (Decimal("0.50"), Decimal("8.00"))
TOP_UP = "5"


class WalletUser(HarnessUser):
    """Reads balances and transactions; withdraws USDT, which may be refused (409)."""

    accounts_funding: ClassVar[Funding] = {"user": {"USDT": "25"}}

    @task(4)
    def balances(self) -> None:
        self.call("GET", "/api/wallet/balances", "wallet.balances", token=self.account.token)

    @task(2)
    def transactions(self) -> None:
        self.call(
            "GET", "/api/wallet/transactions?limit=20", "wallet.transactions",
            token=self.account.token,
        )  # fmt: skip

    @task(3)
    def withdraw(self) -> None:
        sent = {"currency": "USDT", "amount": random_amount(self.random, *WITHDRAWAL)}
        self.money_call(
            "wallet.withdraw", {"user_id": self.account.user_id, **sent},
            "POST", "/api/wallet/withdraw", "wallet.withdraw", service="wallet",
            token=self.account.token, json=sent, idempotent=True,
            expected=[(409, "insufficient_funds")], requires=MOVED_FIELDS,
            returns=("transaction_id",),
        )  # fmt: skip

    @task(1)
    def top_up(self) -> None:
        self.fund(self.account, "USDT", TOP_UP)
