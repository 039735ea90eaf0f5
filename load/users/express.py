"""Express buyers: quote a buy from the platform's liquidity, then order it.

Each buyer also tops up the liquidity it will buy from, through the admin API (that is the
"funds itself" of this kind: express buys come out of admin-funded liquidity). Expected
refusals: 409 when liquidity or the buyer's funds run short, 410 for a quote kept too long.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import ClassVar

from locust import task

from load.users.base import Funding, HarnessUser, fields_of, random_amount

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
ORDER_FIELDS = ("order_id", "quote_id", "buy", "buy_amount", "pay", "pay_amount", "fee",
                "fee_currency", "rate", "transaction_id", "replayed")  # fmt: skip


class ExpressBuyerUser(HarnessUser):
    """Quotes an express buy and orders it at once."""

    accounts_funding: ClassVar[Funding] = {"user": {"USDT": "1500"}}

    def on_start(self) -> None:
        super().on_start()
        if self.shared.admin_token is None:
            return
        for currency, amount in LIQUIDITY.items():
            reply = self.call(
                "POST", "/api/admin/liquidity", "admin.liquidity", token=self.shared.admin_token,
                json={"currency": currency, "amount": amount}, idempotent=True,
            )  # fmt: skip
            if reply.ok:
                self.ack("admin.liquidity", **fields_of(reply, "transaction_id", "currency",
                                                        "amount", "replayed"))  # fmt: skip

    @task
    def buy(self) -> None:
        buy, pay, low, high = random.choice(BUYS)
        reply = self.call(
            "POST", "/api/express/quotes", "express.quote", token=self.account.token,
            json={"buy": buy, "pay": pay, "amount": random_amount(low, high)},
        )  # fmt: skip
        quote_id = reply.text("quote_id")
        if not reply.ok or quote_id is None:
            return
        order = self.call(
            "POST", f"/api/express/quotes/{quote_id}/orders", "express.order",
            token=self.account.token, idempotent=True, expected=ORDER_EXPECTED,
        )  # fmt: skip
        if order.ok and order.body.get("state") == "filled":
            self.ack("express.order", user_id=self.account.user_id,
                     **fields_of(order, *ORDER_FIELDS))  # fmt: skip
