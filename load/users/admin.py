"""The admin: funds users, decides disputes the traders left, checks readiness. Light."""

from __future__ import annotations

from decimal import Decimal

from locust import task
from locust.exception import StopUser

from isolation_harness.load.users.base import HarnessUser, random_amount
from isolation_harness.load.users.p2p import TRADE_FIELDS

#: currency -> (smallest, largest) amount of one credit
CREDITS: dict[str, tuple[Decimal, Decimal]] = {
    "USDT": (Decimal("1.00"), Decimal("100.00")),
    "BTC": (Decimal("0.0001"), Decimal("0.01")),
}


class AdminUser(HarnessUser):
    """Credits its own account, resolves disputed trades if any, reads readiness."""

    think_time = (0.3, 1.0)

    def on_start(self) -> None:
        if self.shared.admin_token is None:
            raise StopUser("AdminUser needs an admin token (HARNESS_ADMIN_TOKEN or `harness up`)")
        super().on_start()

    @task(3)
    def credit(self) -> None:
        currency = self.random.choice(list(CREDITS))
        self.fund(self.account, currency, random_amount(self.random, *CREDITS[currency]))

    @task(2)
    def resolve_dispute(self) -> None:
        if not self.shared.disputes:
            self.readiness()
            return
        trade_id = self.shared.disputes.popleft()
        winner = self.random.choice(("buyer", "seller"))
        self.money_call(
            "p2p.trade_resolve", {"trade_id": trade_id, "by": "admin", "winner": winner},
            "POST", f"/api/admin/p2p/trades/{trade_id}/resolve", "admin.resolve",
            service="p2p", token=self.shared.admin_token, json={"winner": winner},
            expected=(409,), requires=TRADE_FIELDS,
        )  # fmt: skip

    @task(1)
    def readiness(self) -> None:
        self.call("GET", "/health/ready", "health.ready")
