"""Express buyers: quote a buy from the platform's liquidity, then order it.

Each buyer also tops up the liquidity it will buy from, through the admin API (that is the
"funds itself" of this kind: express buys come out of admin-funded liquidity). Expected
refusals: 409 when liquidity or the buyer's funds run short, 410 for a quote kept too long.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from locust import task

from isolation_harness.load.users.base import MOVED_FIELDS, Funding, HarnessUser, random_amount

#: (bought, paid with, smallest and largest amount bought)
BUYS: tuple[tuple[str, str, Decimal, Decimal], ...] = (
    ("BTC", "USDT", Decimal("0.0001"), Decimal("0.001")),
    ("ETH", "USDT", Decimal("0.001"), Decimal("0.02")),
)
#: liquidity each buyer adds on start, per bought currency
LIQUIDITY = {"BTC": "0.05", "ETH": "1"}
ORDER_EXPECTED = (
    (409, "insufficient_liquidity"),
    (409, "insufficient_funds"),
    (410, "quote_expired"),
)
#: what the answer to an order documents (a 2xx order is filled: it has its transaction)
ORDER_FIELDS = ("order_id", "quote_id", "state", "buy", "buy_amount", "pay", "pay_amount",
                "fee", "fee_currency", "rate", "transaction_id", "replayed")  # fmt: skip
QUOTE_FIELDS = ("quote_id", "buy", "buy_amount", "pay", "pay_amount")


class ExpressBuyerUser(HarnessUser):
    """Quotes an express buy and orders it at once."""

    accounts_funding: ClassVar[Funding] = {"user": {"USDT": "1500"}}

    def on_start(self) -> None:
        super().on_start()
        if self.shared.admin_token is None:
            return
        for currency, amount in LIQUIDITY.items():
            sent = {"currency": currency, "amount": amount}
            self.money_call(
                "admin.liquidity", sent, "POST", "/api/admin/liquidity", "admin.liquidity",
                service="express", token=self.shared.admin_token, json=sent, idempotent=True,
                requires=MOVED_FIELDS, returns=("transaction_id",),
            )  # fmt: skip

    @task
    def buy(self) -> None:
        buy, pay, low, high = self.random.choice(BUYS)
        amount = random_amount(self.random, low, high)
        reply = self.call(
            "POST", "/api/express/quotes", "express.quote", token=self.account.token,
            json={"buy": buy, "pay": pay, "amount": amount}, requires=QUOTE_FIELDS,
        )  # fmt: skip
        quote_id = reply.text("quote_id")
        if not reply.ok or quote_id is None:
            return
        self.money_call(
            "express.order",
            {"quote_id": quote_id, "user_id": self.account.user_id, "buy": buy,
             "amount": amount, "pay": pay},
            "POST", f"/api/express/quotes/{quote_id}/orders", "express.order",
            service="express", token=self.account.token, idempotent=True,
            expected=ORDER_EXPECTED, requires=ORDER_FIELDS, returns=("order_id", "transaction_id"),
        )  # fmt: skip
