"""Wallet use cases on a real PostgreSQL (through the app's own pools and boundary)."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import psycopg2
import pytest

from isolation_harness.reference_app.app_keys import WALLET
from isolation_harness.reference_app.errors import Conflict, InsufficientFunds, NotFound
from isolation_harness.reference_app.services.wallet.domain import (
    DEPOSITS_SOURCE,
    SYSTEM_SLOTS,
    TREASURY,
    WITHDRAWALS,
    AccountRef,
    Leg,
    LockState,
    spread,
)
from isolation_harness.reference_app.services.wallet.service import WalletService
from tests.plugins.reference_app import RunningApp


@pytest.fixture
def wallet(api: RunningApp) -> WalletService:
    return api.app[WALLET]


async def ledger_sum(wallet: WalletService) -> dict[str, Decimal]:
    async with wallet.db.cursor() as cur:
        await cur.execute("SELECT currency, sum(amount) FROM wallet.entries GROUP BY currency")
        return {c: Decimal(s) for c, s in await cur.fetchall()}


async def new_user(wallet: WalletService) -> uuid.UUID:
    return await wallet.create_user(f"u_{uuid.uuid4().hex[:10]}")


async def test_credit_then_balance(wallet: WalletService) -> None:
    user = await new_user(wallet)
    posted = await wallet.credit(
        user, "BTC", Decimal("1.5"), source=TREASURY, idempotency_key=f"k-{user}"
    )
    assert not posted.replayed
    balance = await wallet.balance(user, "BTC")
    assert balance.available == Decimal("1.5")
    assert balance.escrow == 0


async def test_credit_is_idempotent(wallet: WalletService) -> None:
    user = await new_user(wallet)
    first = await wallet.credit(user, "ETH", Decimal("2"), idempotency_key=f"once-{user}")
    again = await wallet.credit(user, "ETH", Decimal("2"), idempotency_key=f"once-{user}")
    assert again.replayed
    assert again.transaction_id == first.transaction_id
    assert (await wallet.balance(user, "ETH")).available == Decimal("2")


async def test_concurrent_debits_never_overdraw(wallet: WalletService) -> None:
    user = await new_user(wallet)
    await wallet.credit(user, "USDT", Decimal("10"), idempotency_key=f"seed-{user}")

    async def debit(n: int) -> bool:
        try:
            await wallet.debit(user, "USDT", Decimal("0.75"), sink=WITHDRAWALS,
                               idempotency_key=f"d-{user}-{n}")  # fmt: skip
            return True
        except InsufficientFunds:
            return False

    results = await asyncio.gather(*(debit(n) for n in range(50)))
    succeeded = sum(results)
    assert succeeded == 13  # floor(10 / 0.75)
    balance = await wallet.balance(user, "USDT")
    assert balance.available == Decimal("10") - Decimal("0.75") * succeeded
    assert balance.available >= 0
    entries = await wallet.entries(user, limit=500)
    assert sum(Decimal(e["amount"]) for e in entries) == balance.available
    assert all(total == 0 for total in (await ledger_sum(wallet)).values())


async def test_escrow_lock_release_with_fee(wallet: WalletService) -> None:
    seller, buyer = await new_user(wallet), await new_user(wallet)
    await wallet.credit(seller, "BTC", Decimal("1"), idempotency_key=f"s-{seller}")
    ref = f"trade:{uuid.uuid4()}"
    lock = await wallet.lock_for_escrow(ref, seller, "BTC", Decimal("0.4"))
    assert lock.state is LockState.HELD
    assert await wallet.lock_for_escrow(ref, seller, "BTC", Decimal("0.4")) == lock
    assert (await wallet.balance(seller, "BTC")).escrow == Decimal("0.4")
    released = await wallet.release_escrow(ref, buyer, fee=Decimal("0.004"))
    assert released.state is LockState.RELEASED
    assert (await wallet.balance(buyer, "BTC")).available == Decimal("0.396")
    seller_balance = await wallet.balance(seller, "BTC")
    assert (seller_balance.available, seller_balance.escrow) == (Decimal("0.6"), 0)
    with pytest.raises(Conflict, match="released, cannot become unlocked"):
        await wallet.unlock_escrow(ref)


async def test_escrow_unlock_returns_funds(wallet: WalletService) -> None:
    seller, buyer = await new_user(wallet), await new_user(wallet)
    await wallet.credit(seller, "ETH", Decimal("3"), idempotency_key=f"s-{seller}")
    ref = f"trade:{uuid.uuid4()}"
    await wallet.lock_for_escrow(ref, seller, "ETH", Decimal("3"))
    with pytest.raises(InsufficientFunds):
        await wallet.lock_for_escrow(f"trade:{uuid.uuid4()}", seller, "ETH", Decimal("0.1"))
    unlocked = await wallet.unlock_escrow(ref)
    assert unlocked.state is LockState.UNLOCKED
    assert (await wallet.balance(seller, "ETH")).available == Decimal("3")
    with pytest.raises(Conflict):
        await wallet.release_escrow(ref, buyer)


async def test_unknown_lock_and_user(wallet: WalletService) -> None:
    with pytest.raises(NotFound):
        await wallet.unlock_escrow("trade:nope")
    with pytest.raises(NotFound):
        await wallet.require_user(uuid.uuid4())


async def test_ledger_is_append_only(wallet: WalletService) -> None:
    user = await new_user(wallet)
    await wallet.credit(user, "BTC", Decimal("1"), idempotency_key=f"a-{user}")
    import psycopg2

    async with wallet.db.cursor() as cur:
        with pytest.raises(psycopg2.Error, match="append-only"):
            await cur.execute("DELETE FROM wallet.entries")
        with pytest.raises(psycopg2.Error, match="append-only"):
            await cur.execute("UPDATE wallet.transactions SET kind = 'x'")


def slot_of(key: str) -> int:
    (leg,) = spread([Leg(AccountRef.system(DEPOSITS_SOURCE, "BTC"), Decimal(1))], key)
    return leg.account.slot


async def test_credits_from_one_system_account_do_not_queue_on_one_row(
    wallet: WalletService, app_database: str
) -> None:
    """Every IPN credit of a currency comes from system:deposits. A posting holding one of
    its rows (a slow transaction) holds up no credit whose key lands on another of them."""
    first = f"ipn-{uuid.uuid4()}"
    other = next(k for n in range(100) if slot_of(k := f"ipn-{uuid.uuid4()}-{n}") != slot_of(first))
    await wallet.credit(await new_user(wallet), "BTC", Decimal(1), idempotency_key=first)
    blocker = psycopg2.connect(app_database)
    try:
        with blocker.cursor() as cur:  # a transaction left open on the row first took
            cur.execute(
                "SELECT 1 FROM wallet.accounts a JOIN wallet.entries e ON e.account_id = a.id "
                "JOIN wallet.transactions t ON t.id = e.transaction_id "
                "WHERE t.idempotency_key = %s AND a.owner = %s FOR UPDATE OF a",
                (first, DEPOSITS_SOURCE),
            )
            assert cur.rowcount == 1
        # one row for all: this waits for the blocker until the wallet's time limit (503)
        user = await new_user(wallet)
        posted = await wallet.credit(user, "BTC", Decimal("0.5"), idempotency_key=other)
        assert not posted.replayed
    finally:
        blocker.rollback()
        blocker.close()
    assert (await wallet.balance(user, "BTC")).available == Decimal("0.5")
    async with wallet.db.cursor() as cur:
        await cur.execute(
            "SELECT count(*), sum(balance) FROM wallet.accounts WHERE owner = %s "
            "AND currency = 'BTC'",
            (DEPOSITS_SOURCE,),
        )
        rows, total = await cur.fetchone()
    assert rows >= 2  # the two credits took two rows of the account
    assert Decimal(total) <= Decimal("-1.5")  # its balance: the sum of its rows


def test_spread_moves_only_outside_world_accounts_to_a_slot_chosen_by_the_key() -> None:
    user = uuid.uuid4()
    legs = [
        Leg(AccountRef.system(DEPOSITS_SOURCE, "BTC"), Decimal(-1)),
        Leg(AccountRef.available(user, "BTC"), Decimal(1)),
    ]
    slots = {spread(legs, f"key-{n}")[0].account.slot for n in range(200)}
    assert slots == set(range(SYSTEM_SLOTS))  # every slot gets used
    assert spread(legs, "same") == spread(legs, "same")  # the key decides
    assert all(spread(legs, f"key-{n}")[1] == legs[1] for n in range(20))  # users: slot 0
    liquidity = [Leg(AccountRef.system("platform:liquidity", "BTC"), Decimal(-1)), legs[1]]
    assert all(spread(liquidity, f"k{n}") == liquidity for n in range(20))  # one row, checked
