"""What tests of money read and set up in the wallet: a funded user, a system account's
balance, the ledger's sum per currency (one definition for every test module)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from isolation_harness.reference_app.services.wallet.domain import TREASURY
from isolation_harness.reference_app.services.wallet.service import WalletService


async def funded_user(wallet: WalletService, **funds: str) -> uuid.UUID:
    """A new user credited from the treasury with ``funds`` (currency -> amount)."""
    user = await wallet.create_user(f"u_{uuid.uuid4().hex[:10]}")
    for currency, amount in funds.items():
        await wallet.credit(
            user, currency, Decimal(amount), source=TREASURY, idempotency_key=f"f-{user}-{currency}"
        )
    return user


async def system_balance(wallet: WalletService, owner: str, currency: str) -> Decimal:
    """The balance of the system account ``owner`` (e.g. ``system:swap``) in ``currency``."""
    async with wallet.db.cursor() as cur:
        await cur.execute(
            "SELECT sum(balance) FROM wallet.accounts WHERE owner = %s AND currency = %s "
            "AND kind = 'system'",
            (owner, currency),
        )
        row = await cur.fetchone()
    return Decimal(row[0]) if row and row[0] is not None else Decimal(0)


async def ledger_sums(wallet: WalletService) -> dict[str, Decimal]:
    """The sum of every entry per currency: zero in a balanced ledger."""
    async with wallet.db.cursor() as cur:
        await cur.execute("SELECT currency, sum(amount) FROM wallet.entries GROUP BY currency")
        return {c: Decimal(s) for c, s in await cur.fetchall()}
