"""Wallet users: balances, the ledger, small withdrawals (running dry now and then)."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from locust import task

from load.users.base import Funding, HarnessUser, fields_of, random_amount

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
        reply = self.call(
            "POST", "/api/wallet/withdraw", "wallet.withdraw", token=self.account.token,
            json={"currency": "USDT", "amount": random_amount(*WITHDRAWAL)}, idempotent=True,
            expected=[(409, "insufficient_funds")],
        )  # fmt: skip
        if reply.ok:
            self.ack(
                "wallet.withdraw", user_id=self.account.user_id,
                **fields_of(reply, "transaction_id", "currency", "amount", "replayed"),
            )  # fmt: skip

    @task(1)
    def top_up(self) -> None:
        self.fund(self.account, "USDT", TOP_UP)
