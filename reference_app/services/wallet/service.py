"""Wallet use cases: every movement of money is one transaction with its ledger entries."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import aiopg

from isolation_harness.reference_app.boundary import Boundary, BoundedService
from isolation_harness.reference_app.db import ServiceDatabase, rows_as_dicts
from isolation_harness.reference_app.errors import BadRequest, Conflict, InsufficientFunds, NotFound
from isolation_harness.reference_app.services.wallet import queries as q
from isolation_harness.reference_app.services.wallet.domain import (
    DEPOSITS_SOURCE,
    LOCK_TRANSITIONS,
    PLATFORM_LIQUIDITY,
    PLATFORM_REVENUE,
    SWAP_DESK,
    TREASURY,
    VOID_KIND,
    AccountKind,
    AccountRef,
    Balance,
    EscrowLock,
    Leg,
    LockState,
    Posted,
    accounts_of,
    check_balanced,
    spread,
    transfer,
)

SERVICE = "wallet"

#: a look at the locked balances of a movement before its legs apply; raises to refuse it
BalanceCheck = Callable[[Mapping[AccountRef, Decimal]], None]


class WalletService(BoundedService):
    """Balances, credits and debits, escrow, and the ledger behind them."""

    def __init__(self, db: ServiceDatabase, boundary: Boundary) -> None:
        self.db = db
        self.boundary = boundary

    # -- users ----------------------------------------------------------------------------

    async def create_user(self, username: str) -> uuid.UUID:
        """Register ``username``; :class:`Conflict` if it is taken."""
        user_id = uuid.uuid4()
        async with self.db.cursor() as cur:
            await cur.execute(q.INSERT_USER, {"id": str(user_id), "username": username})
            if await cur.fetchone() is None:
                raise Conflict(
                    f"username {username!r} is taken", service=SERVICE, code="username_taken"
                )
        return user_id

    async def require_user(self, user_id: uuid.UUID) -> None:
        """:class:`NotFound` unless ``user_id`` is a registered user."""
        async with self.db.cursor() as cur:
            await cur.execute(q.USER_EXISTS, {"id": str(user_id)})
            if await cur.fetchone() is None:
                raise NotFound("no such user", service=SERVICE, code="user_not_found")

    # -- reads ----------------------------------------------------------------------------

    async def balances(self, user_id: uuid.UUID) -> list[Balance]:
        async with self.db.cursor() as cur:
            await cur.execute(q.BALANCES, {"owner": str(user_id)})
            rows = await cur.fetchall()
        return [Balance(c, Decimal(a), Decimal(e)) for c, a, e in rows]

    async def balance(self, user_id: uuid.UUID, currency: str) -> Balance:
        for balance in await self.balances(user_id):
            if balance.currency == currency:
                return balance
        return Balance(currency, Decimal(0), Decimal(0))

    async def entries(self, user_id: uuid.UUID, limit: int = 50) -> list[dict[str, Any]]:
        """The user's ledger entries, newest first."""
        async with self.db.cursor() as cur:
            await cur.execute(q.USER_ENTRIES, {"owner": str(user_id), "limit": limit})
            return rows_as_dicts(cur, await cur.fetchall())

    async def liquidity(self) -> dict[str, Decimal]:
        """The express-buy liquidity per currency ever funded (zero ones included)."""
        async with self.db.cursor() as cur:
            await cur.execute(q.SYSTEM_BALANCES, {"owner": PLATFORM_LIQUIDITY})
            return {currency: Decimal(balance) for currency, balance in await cur.fetchall()}

    async def posted_under(self, keys: Sequence[str]) -> dict[str, int]:
        """The transactions posted under any of ``keys``: key -> transaction id."""
        async with self.db.cursor() as cur:
            await cur.execute(q.TRANSACTIONS_BY_KEYS, {"keys": list(keys)})
            return {key: int(tid) for key, tid in await cur.fetchall()}

    async def void_key(self, idempotency_key: str, reference: str) -> Posted | None:
        """Settle a movement whose caller never heard the wallet's answer (a 5xx, a cut
        link): the transaction posted under ``idempotency_key``, or None, and then nothing
        ever will be: the key is spent on an empty ``void`` transaction, so that a call
        still under way, or retried later, is refused (:class:`Conflict`
        ``idempotency_key_reused``) instead of moving the money late."""
        async with self.db.cursor() as cur:
            await cur.execute(
                q.INSERT_TRANSACTION,
                {"kind": VOID_KIND, "reference": reference, "key": idempotency_key},
            )
            if await cur.fetchone() is not None:
                return None
            await cur.execute(q.TRANSACTION_KIND_BY_KEY, {"key": idempotency_key})
            transaction_id, kind = await cur.fetchone()
        return None if kind == VOID_KIND else Posted(int(transaction_id), replayed=True)

    async def escrow_lock(self, reference: str) -> EscrowLock:
        async with self.db.cursor() as cur:
            await cur.execute(q.LOCK_BY_REFERENCE, {"reference": reference})
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no escrow lock {reference}", service=SERVICE)
        return _lock(row)

    # -- movements ------------------------------------------------------------------------

    async def credit(
        self,
        user_id: uuid.UUID,
        currency: str,
        amount: Decimal,
        *,
        source: str = DEPOSITS_SOURCE,
        kind: str = "credit",
        idempotency_key: str,
        reference: str | None = None,
    ) -> Posted:
        """Add ``amount`` to the user's available balance, taken from system account ``source``.
        A repeat of the key for another user, currency or amount is :class:`Conflict`."""
        legs = transfer(
            AccountRef.system(source, currency), AccountRef.available(user_id, currency), amount
        )
        return await self._post_once(kind, reference, idempotency_key, legs)

    async def debit(
        self,
        user_id: uuid.UUID,
        currency: str,
        amount: Decimal,
        *,
        sink: str,
        kind: str = "debit",
        idempotency_key: str,
        reference: str | None = None,
    ) -> Posted:
        """Take ``amount`` from the user's available balance; never overdraws. A repeat of the
        key for another currency or amount is :class:`Conflict`."""
        legs = transfer(
            AccountRef.available(user_id, currency), AccountRef.system(sink, currency), amount
        )
        return await self._post_once(kind, reference, idempotency_key, legs)

    async def exchange(
        self,
        user_id: uuid.UUID,
        *,
        sell: tuple[str, Decimal],
        buy: tuple[str, Decimal],
        fee: Decimal,
        idempotency_key: str,
        reference: str,
        spread: Decimal = Decimal(0),
    ) -> Posted:
        """Swap: the user gives ``sell`` (of which ``fee`` is the platform's) and gets ``buy``;
        the desk pays ``spread`` more of the bought currency to the platform's revenue (what
        the spread earned: the market price's amount less ``buy``)."""
        (sell_ccy, sell_amount), (buy_ccy, buy_amount) = sell, buy
        if not Decimal(0) <= fee < sell_amount:
            raise BadRequest("fee must be below the amount sold", service=SERVICE)
        if spread < 0:
            raise BadRequest("spread must not be negative", service=SERVICE)
        desk = AccountRef.system(SWAP_DESK, buy_ccy)
        legs = [
            Leg(AccountRef.available(user_id, sell_ccy), -sell_amount),
            Leg(AccountRef.system(SWAP_DESK, sell_ccy), sell_amount - fee),
            *([Leg(AccountRef.system(PLATFORM_REVENUE, sell_ccy), fee)] if fee else []),
            *transfer(desk, AccountRef.available(user_id, buy_ccy), buy_amount),
        ]
        if spread:
            legs += transfer(desk, AccountRef.system(PLATFORM_REVENUE, buy_ccy), spread)
        async with self.db.transaction() as cur:
            return await self._post(cur, "swap", reference, idempotency_key, legs)

    async def fund_liquidity(
        self, currency: str, amount: Decimal, *, idempotency_key: str
    ) -> Posted:
        """Move ``amount`` from the treasury into the platform's liquidity for express buy.

        A repeat with the same idempotency key moves nothing; with the same key but another
        currency or amount it is :class:`Conflict` ``idempotency_key_reused``.
        """
        legs = transfer(
            AccountRef.system(TREASURY, currency),
            AccountRef.system(PLATFORM_LIQUIDITY, currency),
            amount,
        )
        return await self._post_once("liquidity_funding", None, idempotency_key, legs)

    async def buy_from_liquidity(
        self,
        user_id: uuid.UUID,
        *,
        buy: tuple[str, Decimal],
        pay: tuple[str, Decimal],
        fee: Decimal,
        idempotency_key: str,
        reference: str,
    ) -> Posted:
        """Express buy, one transaction: the user gets ``buy`` out of the platform's
        liquidity and gives ``pay``, of which ``fee`` is the platform's revenue and the rest
        goes into the liquidity of the currency paid.

        Liquidity short of ``buy``: :class:`Conflict` ``insufficient_liquidity``; the user
        short of ``pay``: :class:`InsufficientFunds`. Either way nothing moves.
        """
        (buy_ccy, buy_amount), (pay_ccy, pay_amount) = buy, pay
        if buy_ccy == pay_ccy:
            raise BadRequest("buy and pay must be different currencies", service=SERVICE)
        if not Decimal(0) <= fee < pay_amount:
            raise BadRequest("fee must be below the amount paid", service=SERVICE)
        source = AccountRef.system(PLATFORM_LIQUIDITY, buy_ccy)
        legs = [
            Leg(AccountRef.available(user_id, pay_ccy), -pay_amount),
            Leg(AccountRef.system(PLATFORM_LIQUIDITY, pay_ccy), pay_amount - fee),
            *([Leg(AccountRef.system(PLATFORM_REVENUE, pay_ccy), fee)] if fee else []),
            *transfer(source, AccountRef.available(user_id, buy_ccy), buy_amount),
        ]

        def enough_liquidity(balances: Mapping[AccountRef, Decimal]) -> None:
            # Checked under the row lock, before the user's balance: a user told to add
            # funds should not then be told that there is nothing to buy. No figures in
            # the message: the platform's liquidity is not the user's business.
            if balances[source] < buy_amount:
                raise Conflict(
                    f"insufficient {buy_ccy} liquidity for express buy",
                    service=SERVICE,
                    code="insufficient_liquidity",
                )

        async with self.db.transaction() as cur:
            return await self._post(
                cur, "express_buy", reference, idempotency_key, legs, check=enough_liquidity
            )

    async def lock_for_escrow(
        self, reference: str, user_id: uuid.UUID, currency: str, amount: Decimal
    ) -> EscrowLock:
        """Move ``amount`` from available to escrow under ``reference`` (idempotent)."""
        async with self.db.transaction() as cur:
            await cur.execute(
                q.INSERT_LOCK,
                {"reference": reference, "owner": str(user_id), "currency": currency,
                 "amount": amount},
            )  # fmt: skip
            if await cur.fetchone() is None:
                await cur.execute(q.LOCK_BY_REFERENCE, {"reference": reference})
                existing = _lock(await cur.fetchone())
                if (existing.owner, existing.currency, existing.amount) != (
                    user_id, currency, amount,
                ):  # fmt: skip
                    raise Conflict(f"escrow {reference} exists with other terms", service=SERVICE)
                return existing
            legs = transfer(
                AccountRef.available(user_id, currency),
                AccountRef.escrow(user_id, currency),
                amount,
            )
            await self._post(cur, "escrow_lock", reference, f"escrow_lock:{reference}", legs)
            await cur.execute(q.LOCK_BY_REFERENCE, {"reference": reference})
            return _lock(await cur.fetchone())

    async def release_escrow(
        self, reference: str, to_user: uuid.UUID, fee: Decimal = Decimal(0)
    ) -> EscrowLock:
        """Pay the held escrow to ``to_user``, less ``fee`` for the platform (idempotent)."""
        async with self.db.transaction() as cur:
            lock = await self._lock_for_update(cur, reference)
            if lock.state is LockState.RELEASED and lock.released_to == to_user:
                return lock
            _check_lock_transition(lock, LockState.RELEASED)
            if not Decimal(0) <= fee < lock.amount:
                raise BadRequest("fee must be below the escrowed amount", service=SERVICE)
            escrow = AccountRef.escrow(lock.owner, lock.currency)
            legs = [
                Leg(escrow, -lock.amount),
                Leg(AccountRef.available(to_user, lock.currency), lock.amount - fee),
                *([Leg(AccountRef.system(PLATFORM_REVENUE, lock.currency), fee)] if fee else []),
            ]
            await self._post(cur, "escrow_release", reference, f"escrow_close:{reference}", legs)
            await cur.execute(
                q.CLOSE_LOCK,
                {"reference": reference, "state": LockState.RELEASED.value,
                 "released_to": str(to_user), "fee": fee},
            )  # fmt: skip
            await cur.execute(q.LOCK_BY_REFERENCE, {"reference": reference})
            return _lock(await cur.fetchone())

    async def unlock_escrow(self, reference: str) -> EscrowLock:
        """Give the held escrow back to its owner (idempotent)."""
        async with self.db.transaction() as cur:
            lock = await self._lock_for_update(cur, reference)
            if lock.state is LockState.UNLOCKED:
                return lock
            _check_lock_transition(lock, LockState.UNLOCKED)
            legs = transfer(
                AccountRef.escrow(lock.owner, lock.currency),
                AccountRef.available(lock.owner, lock.currency),
                lock.amount,
            )
            await self._post(cur, "escrow_unlock", reference, f"escrow_close:{reference}", legs)
            await cur.execute(
                q.CLOSE_LOCK,
                {"reference": reference, "state": LockState.UNLOCKED.value,
                 "released_to": None, "fee": None},
            )  # fmt: skip
            await cur.execute(q.LOCK_BY_REFERENCE, {"reference": reference})
            return _lock(await cur.fetchone())

    # -- the ledger -----------------------------------------------------------------------

    async def _lock_for_update(self, cur: aiopg.Cursor, reference: str) -> EscrowLock:
        await cur.execute(q.LOCK_FOR_UPDATE, {"reference": reference})
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no escrow lock {reference}", service=SERVICE)
        return _lock(row)

    async def _post(
        self,
        cur: aiopg.Cursor,
        kind: str,
        reference: str | None,
        idempotency_key: str,
        legs: list[Leg],
        *,
        check: BalanceCheck | None = None,
    ) -> Posted:
        """Record ``legs`` as one ledger transaction and apply them to the balances.

        Runs inside the caller's database transaction. A second call with the same
        idempotency key changes nothing and returns the first transaction. ``check`` sees
        the balances of the accounts involved, locked, before any leg applies.
        """
        check_balanced(legs)
        await cur.execute(
            q.INSERT_TRANSACTION, {"kind": kind, "reference": reference, "key": idempotency_key}
        )
        row = await cur.fetchone()
        if row is None:
            await cur.execute(q.TRANSACTION_BY_KEY, {"key": idempotency_key})
            existing = await cur.fetchone()
            return Posted(existing[0], replayed=True)
        transaction_id = row[0]
        legs = spread(legs, idempotency_key)
        accounts = accounts_of(legs)
        for account in accounts:
            await cur.execute(
                q.ENSURE_ACCOUNT,
                {"owner": account.owner, "currency": account.currency,
                 "kind": account.kind.value, "slot": account.slot},
            )  # fmt: skip
        keys = tuple((a.owner, a.currency, a.kind.value, a.slot) for a in accounts)
        await cur.execute(q.LOCK_ACCOUNTS, {"keys": keys})
        by_ref = {
            AccountRef(owner, ccy, AccountKind(kind), slot): (id_, Decimal(bal))
            for id_, owner, ccy, kind, slot, bal in await cur.fetchall()
        }
        if check is not None:
            check({ref: balance for ref, (_id, balance) in by_ref.items()})
        for leg in legs:
            account_id, balance = by_ref[leg.account]
            new_balance = balance + leg.amount
            if leg.account.kind is not AccountKind.SYSTEM and new_balance < 0:
                # No figures in the message: it may reach another user (a buyer opening a
                # trade on a seller's funds).
                raise InsufficientFunds(
                    f"insufficient {leg.account.currency} {leg.account.kind.value} balance",
                    service=SERVICE,
                )
            by_ref[leg.account] = (account_id, new_balance)
            await cur.execute(q.ADD_TO_BALANCE, {"id": account_id, "amount": leg.amount})
            await cur.execute(
                q.INSERT_ENTRY,
                {"transaction_id": transaction_id, "account_id": account_id,
                 "currency": leg.account.currency, "amount": leg.amount},
            )  # fmt: skip
        return Posted(transaction_id, replayed=False)

    async def _post_once(
        self, kind: str, reference: str | None, idempotency_key: str, legs: list[Leg]
    ) -> Posted:
        """:meth:`_post` in a transaction of its own: one key, one movement (a repeat with
        other legs is :class:`Conflict` ``idempotency_key_reused``, and moves nothing)."""
        async with self.db.transaction() as cur:
            posted = await self._post(cur, kind, reference, idempotency_key, legs)
            if posted.replayed:
                await self._check_replay(cur, posted, legs)
            return posted

    async def _check_replay(self, cur: aiopg.Cursor, posted: Posted, legs: list[Leg]) -> None:
        """:class:`Conflict` unless the replayed transaction has exactly these legs."""
        await cur.execute(q.TRANSACTION_LEGS, {"transaction_id": posted.transaction_id})
        recorded = Counter(
            (owner, ccy, AccountKind(kind), Decimal(amount))
            for owner, ccy, kind, amount in await cur.fetchall()
        )
        wanted = Counter(
            (leg.account.owner, leg.account.currency, leg.account.kind, leg.amount) for leg in legs
        )
        if recorded != wanted:
            raise Conflict(
                "idempotency key already used for another movement",
                service=SERVICE,
                code="idempotency_key_reused",
            )


def _lock(row: Any) -> EscrowLock:
    reference, owner, currency, amount, state, released_to, fee = row
    return EscrowLock(
        reference=reference,
        owner=uuid.UUID(str(owner)),
        currency=currency,
        amount=Decimal(amount),
        state=LockState(state),
        released_to=uuid.UUID(str(released_to)) if released_to else None,
        fee=Decimal(fee) if fee is not None else None,
    )


def _check_lock_transition(lock: EscrowLock, target: LockState) -> None:
    if target not in LOCK_TRANSITIONS[lock.state]:
        raise Conflict(
            f"escrow {lock.reference} is {lock.state.value}, cannot become {target.value}",
            service=SERVICE,
            code="invalid_transition",
        )
