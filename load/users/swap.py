"""Swappers: quote, then execute; a quote kept too long is refused as expired (410)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from locust import task
from locust.env import Environment

from isolation_harness.load.users.base import Funding, HarnessUser, Reply, random_amount

#: (sell, buy, smallest and largest amount sold)
SWAPS: tuple[tuple[str, str, Decimal, Decimal], ...] = (
    ("USDT", "BTC", Decimal("5.00"), Decimal("60.00")),
    ("USDT", "ETH", Decimal("5.00"), Decimal("60.00")),
    ("BTC", "USDT", Decimal("0.0001"), Decimal("0.001")),
)
#: share of quotes kept for later instead of executed at once
KEEP_FOR_LATER = 0.15
EXECUTE_EXPECTED = ((409, "insufficient_funds"), (410, "quote_expired"))
#: what the answer to an execution documents
EXECUTED_FIELDS = ("quote_id", "sell", "sell_amount", "buy", "buy_amount", "fee",
                   "fee_currency", "price", "transaction_id", "replayed")  # fmt: skip
QUOTE_FIELDS = ("quote_id", "sell", "sell_amount", "buy", "buy_amount")


@dataclass(frozen=True)
class Asked:
    """A quote, with the terms this client asked it for."""

    quote_id: str
    sell: str
    buy: str
    amount: str


class SwapperUser(HarnessUser):
    """Quotes a swap and executes it; sometimes executes an older quote instead."""

    accounts_funding: ClassVar[Funding] = {"user": {"USDT": "1500", "BTC": "0.02"}}

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.kept: deque[Asked] = deque(maxlen=20)
        self.quotes: deque[str] = deque(maxlen=20)

    @task(5)
    def quote_and_execute(self) -> None:
        sell, buy, low, high = self.random.choice(SWAPS)
        amount = random_amount(self.random, low, high)
        reply = self.call(
            "POST", "/api/swap/quotes", "swap.quote", token=self.account.token,
            json={"sell": sell, "buy": buy, "amount": amount}, requires=QUOTE_FIELDS,
        )  # fmt: skip
        quote_id = reply.text("quote_id")
        if not reply.ok or quote_id is None:
            return
        self.quotes.append(quote_id)
        asked = Asked(quote_id, sell, buy, amount)
        if self.random.random() < KEEP_FOR_LATER:
            self.kept.append(asked)
        else:
            self.execute(asked)

    @task(1)
    def execute_kept(self) -> None:
        if self.kept:
            self.execute(self.kept.popleft())
        else:
            self.read_quote()

    @task(1)
    def read_quote(self) -> None:
        if self.quotes:
            self.call(
                "GET", f"/api/swap/quotes/{self.random.choice(self.quotes)}", "swap.get",
                token=self.account.token,
            )  # fmt: skip

    def execute(self, quote: Asked) -> Reply:
        return self.money_call(
            "swap.execute",
            {"quote_id": quote.quote_id, "user_id": self.account.user_id, "sell": quote.sell,
             "amount": quote.amount, "buy": quote.buy},
            "POST", f"/api/swap/quotes/{quote.quote_id}/execute", "swap.execute",
            service="swap", token=self.account.token, idempotent=True,
            expected=EXECUTE_EXPECTED, requires=EXECUTED_FIELDS, returns=("transaction_id",),
        )  # fmt: skip
