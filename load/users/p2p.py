"""P2P traders: a seller and a buyer walking trades through the state machine.

Every 409 is a domain refusal here (offer exhausted or closed, seller cannot cover, invalid
transition after a race with expiry or an admin, trade busy), so it counts as a success.
"""

from __future__ import annotations

from typing import ClassVar

from locust import task
from locust.env import Environment

from isolation_harness.load.users.base import Funding, HarnessUser, Reply

CURRENCY = "BTC"
FIAT = "USD"
OFFER = {"currency": CURRENCY, "fiat": FIAT, "price": "64000.00", "amount": "0.01",
         "max_amount": "0.002"}  # fmt: skip
TRADE_AMOUNT = "0.001"
SELLER_FUNDS = "0.2"
#: open offers a trader keeps at most
MAX_OFFERS = 3
REFUSED = (409,)
#: what the answer to a trade's opening or transition documents
TRADE_FIELDS = ("trade_id", "offer_id", "seller_id", "buyer_id", "currency", "amount",
                "fiat_total", "state", "escrow_reference")  # fmt: skip
OFFER_FIELDS = ("offer_id", "seller_id", "currency", "amount", "remaining", "state")
#: trade action -> who takes it
ACTIONS = {"paid": "buyer", "release": "seller", "cancel": "buyer"}


class P2PTraderUser(HarnessUser):
    """Seller posts offers, buyer opens trades and pays, seller releases; now and then a
    trade is cancelled or disputed (disputes are left to an admin user)."""

    accounts_funding: ClassVar[Funding] = {"seller": {CURRENCY: SELLER_FUNDS}, "buyer": {}}

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.offers: list[str] = []
        self.open_trades: list[str] = []
        self.paid_trades: list[str] = []

    @task(1)
    def post_offer(self) -> None:
        if len(self.offers) >= MAX_OFFERS:
            self.call(
                "GET", f"/api/p2p/offers?currency={CURRENCY}&fiat={FIAT}&limit=20",
                "p2p.offers", token=self.accounts["buyer"].token,
            )  # fmt: skip
            return
        reply = self.call(
            "POST", "/api/p2p/offers", "p2p.offer_create", token=self.accounts["seller"].token,
            json=OFFER, requires=OFFER_FIELDS,
        )  # fmt: skip
        offer_id = reply.text("offer_id")
        if reply.ok and offer_id is not None:
            self.offers.append(offer_id)

    @task(3)
    def open_trade(self) -> None:
        if not self.offers:
            self.post_offer()
            return
        offer_id = self.offers[-1]
        sent = {"offer_id": offer_id, "amount": TRADE_AMOUNT}
        reply = self.money_call(
            "p2p.trade_open", {"buyer_id": self.accounts["buyer"].user_id, **sent},
            "POST", "/api/p2p/trades", "p2p.trade_open", service="p2p",
            token=self.accounts["buyer"].token, json=sent, idempotent=True, expected=REFUSED,
            requires=TRADE_FIELDS, returns=("trade_id",),
        )  # fmt: skip
        trade_id = reply.text("trade_id")
        if reply.ok and trade_id is not None:
            self.open_trades.append(trade_id)
        elif reply.code in ("offer_exhausted", "offer_closed"):
            self.offers.remove(offer_id)
        elif reply.code == "seller_cannot_cover":  # the offer is withdrawn with it
            self.offers.remove(offer_id)
            self.fund(self.accounts["seller"], CURRENCY, SELLER_FUNDS)

    @task(3)
    def mark_paid(self) -> None:
        if not self.open_trades:
            self.open_trade()
            return
        trade_id = self.open_trades.pop(0)
        if self._move(trade_id, "paid").ok:
            self.paid_trades.append(trade_id)

    @task(3)
    def release(self) -> None:
        if not self.paid_trades:
            self.mark_paid()
            return
        self._move(self.paid_trades.pop(0), "release")

    @task(1)
    def cancel_or_dispute(self) -> None:
        if self.open_trades and (not self.paid_trades or self.random.random() < 0.5):
            self._move(self.open_trades.pop(), "cancel")
        elif self.paid_trades:
            trade_id = self.paid_trades.pop()
            if self._move(trade_id, "dispute", self.random.choice(("buyer", "seller"))).ok:
                self.shared.disputes.append(trade_id)
        else:
            self.read_trades()

    @task(1)
    def read_trades(self) -> None:
        self.call(
            "GET", "/api/p2p/trades?limit=20", "p2p.trades", token=self.accounts["buyer"].token
        )

    def _move(self, trade_id: str, action: str, role: str | None = None) -> Reply:
        """Take ``action`` on the trade as ``role`` (default: the one who takes it)."""
        role = role or ACTIONS[action]
        return self.money_call(
            f"p2p.trade_{action}", {"trade_id": trade_id, "by": role},
            "POST", f"/api/p2p/trades/{trade_id}/{action}", f"p2p.trade_{action}",
            service="p2p", token=self.accounts[role].token, expected=REFUSED,
            requires=TRADE_FIELDS,
        )  # fmt: skip
