"""Deposit use cases: create a deposit at the provider, apply its IPN callbacks."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiopg

from isolation_harness.reference_app.boundary import Boundary, BoundedService
from isolation_harness.reference_app.db import ServiceDatabase
from isolation_harness.reference_app.errors import (
    BadRequest,
    Conflict,
    DependencyUnavailable,
    NotFound,
    Unauthorized,
    UpstreamRefused,
)
from isolation_harness.reference_app.payments_signature import verify
from isolation_harness.reference_app.services.deposits import queries as q
from isolation_harness.reference_app.services.deposits.domain import (
    PAYMENT_ID_DIGITS,
    PAYMENT_ID_PATTERN,
    Deposit,
    DepositStatus,
    Outcome,
    judge,
)
from isolation_harness.reference_app.services.deposits.provider import (
    PROVIDER_TICKERS,
    PaymentProvider,
    ProviderRefused,
    ProviderUnavailable,
)
from isolation_harness.reference_app.services.wallet.domain import DEPOSITS_SOURCE
from isolation_harness.reference_app.services.wallet.service import WalletService

SERVICE = "deposits"
log = logging.getLogger(__name__)


class DepositsService(BoundedService):
    """Deposits: one provider payment each; ``finished`` credits the wallet exactly once."""

    def __init__(
        self,
        db: ServiceDatabase,
        boundary: Boundary,
        wallet: WalletService,
        provider: PaymentProvider,
        *,
        ipn_secret: str,
        ipn_callback_url: str,
        ipn_holds: int | None = None,
    ) -> None:
        self.db = db
        self.boundary = boundary
        self.wallet = wallet
        self.provider = provider
        self._ipn_secret = ipn_secret
        self._ipn_callback_url = ipn_callback_url
        # An IPN holds a connection and its deposit's row across the wallet's credit (so the
        # credit and the deposit's move are one step to every other reader): at most
        # ``ipn_holds`` at a time, so that a wallet that hangs holds no more of the pool;
        # each hold ends with the service's time limit (the wallet's call gets what is left).
        self._ipn_holds = asyncio.Semaphore(ipn_holds) if ipn_holds else None

    async def create_deposit(
        self, user_id: uuid.UUID, currency: str, amount: Decimal, idempotency_key: str
    ) -> tuple[Deposit, bool]:
        """Create a deposit (or return the one made with the same key): ``(deposit, replayed)``.

        The provider is asked first, holding no database connection (a slow provider must
        not drain the pool), and the deposit is written in one statement once it answered:
        a failing provider leaves nothing behind. Of concurrent requests with one key, one
        insert wins and the others return its deposit; their provider payments stay unpaid
        and expire at the provider, no money is involved.
        """
        existing = await self._by_key(user_id, idempotency_key)
        if existing is not None:
            return _same_terms(existing, currency, amount), True
        deposit_id = uuid.uuid4()
        try:
            payment = await self.provider.create_payment(
                amount=amount,
                currency=currency,
                order_id=str(deposit_id),
                ipn_callback_url=self._ipn_callback_url,
            )
        except ProviderUnavailable as exc:
            raise DependencyUnavailable(
                f"payment provider unavailable: {exc}",
                service=SERVICE,
                code="provider_unavailable",
            ) from exc
        except ProviderRefused as exc:
            raise UpstreamRefused(str(exc), service=SERVICE, code="provider_refused") from exc
        async with self.db.cursor() as cur:
            await cur.execute(
                q.INSERT_DEPOSIT,
                {"id": str(deposit_id), "user_id": str(user_id), "currency": currency,
                 "amount": amount, "key": idempotency_key, "payment_id": payment.payment_id,
                 "pay_address": payment.pay_address, "pay_amount": payment.pay_amount,
                 "pay_currency": payment.pay_currency},
            )  # fmt: skip
            row = await cur.fetchone()
        if row is not None:
            return _deposit(row), False
        winner = await self._by_key(user_id, idempotency_key)
        assert winner is not None, "a conflicting insert means the row exists"
        return _same_terms(winner, currency, amount), True

    async def _by_key(self, user_id: uuid.UUID, key: str) -> Deposit | None:
        async with self.db.cursor() as cur:
            await cur.execute(q.DEPOSIT_BY_KEY, {"user_id": str(user_id), "key": key})
            row = await cur.fetchone()
        return _deposit(row) if row is not None else None

    async def deposit(self, user_id: uuid.UUID, deposit_id: uuid.UUID) -> Deposit:
        """The user's deposit; someone else's is :class:`NotFound` like a missing one."""
        async with self.db.cursor() as cur:
            await cur.execute(q.DEPOSIT_BY_ID, {"id": str(deposit_id)})
            row = await cur.fetchone()
        if row is None:
            raise NotFound("no such deposit", service=SERVICE)
        found = _deposit(row)
        if found.user_id != user_id:
            raise NotFound("no such deposit", service=SERVICE)
        return found

    async def deposits(self, user_id: uuid.UUID, limit: int = 50) -> list[Deposit]:
        async with self.db.cursor() as cur:
            await cur.execute(q.USER_DEPOSITS, {"user_id": str(user_id), "limit": limit})
            return [_deposit(row) for row in await cur.fetchall()]

    async def expire_unpaid(
        self, now: datetime.datetime, older_than: datetime.timedelta, limit: int = 500
    ) -> list[uuid.UUID]:
        """Expire deposits still ``waiting`` that were created ``older_than`` before ``now``.

        Only ``waiting`` becomes ``expired``: a deposit the provider reported on is left to
        its callbacks. One the wallet already credited (its IPN's credit committed, its own
        move did not: the deposits database cut in between) is finished instead, never
        expired: the wallet is asked under the rows' locks, and a credit is only made under
        them. Safe to run concurrently (several workers): each deposit expires once, and the
        ids returned are those this call expired. At most ``limit`` a call.
        """
        async with self.db.transaction() as cur:
            await cur.execute(q.LOCK_UNPAID, {"before": now - older_than, "limit": limit})
            due = [uuid.UUID(str(row[0])) for row in await cur.fetchall()]
            if not due:
                return []
            credited = await self.wallet.posted_under([_credit_key(d) for d in due])
            for deposit_id in due:
                posted = credited.get(_credit_key(deposit_id))
                if posted is not None:
                    log.warning("deposit %s: credited (transaction %s) but still waiting: "
                                "finished, not expired", deposit_id, posted)  # fmt: skip
                    await cur.execute(
                        q.MARK_FINISHED, {"id": str(deposit_id), "transaction_id": posted}
                    )
            unpaid = [str(d) for d in due if _credit_key(d) not in credited]
            await cur.execute(q.EXPIRE, {"ids": unpaid})
            return [uuid.UUID(str(row[0])) for row in await cur.fetchall()]

    async def apply_ipn(self, raw_body: bytes, signature: str | None) -> tuple[Outcome, Deposit]:
        """Apply a provider callback: only signed ones, only allowed transitions.

        On ``finished`` the wallet is credited first, with the deposit as idempotency key,
        and then the deposit is marked finished: if anything fails in between, the provider
        calls again, the credit is not repeated, and the deposit gets marked. The deposit row
        stays locked meanwhile, so concurrent callbacks for it apply one after the other.
        """
        if not verify(raw_body, signature, self._ipn_secret):
            raise Unauthorized("invalid IPN signature", service=SERVICE, code="invalid_signature")
        payment_id, reported, body = _read_ipn(raw_body)
        async with self._ipn_hold(), self.db.transaction() as cur:
            await cur.execute(q.DEPOSIT_BY_PAYMENT_FOR_UPDATE, {"payment_id": payment_id})
            row = await cur.fetchone()
            if row is None:
                raise NotFound(f"no deposit for payment {payment_id}", service=SERVICE)
            deposit = _deposit(row)
            wrong = _mismatch(deposit, body)
            outcome = Outcome.MISMATCHED if wrong else judge(deposit.status, reported)
            if outcome is Outcome.APPLIED:
                await self._move(cur, deposit, reported)
            await cur.execute(
                q.RECORD_IPN,
                {"payment_id": payment_id, "status": reported.value, "outcome": outcome.value,
                 "body": raw_body.decode()},
            )  # fmt: skip
            await cur.execute(q.DEPOSIT_BY_ID, {"id": str(deposit.id)})
            now = _deposit(await cur.fetchone())
        if wrong:  # recorded (committed above), and refused
            raise Conflict(
                f"IPN for payment {payment_id} does not match deposit {deposit.id}: "
                + "; ".join(wrong),
                service=SERVICE,
                code="ipn_mismatch",
            )
        return outcome, now

    @contextlib.asynccontextmanager
    async def _ipn_hold(self) -> AsyncIterator[None]:
        """One of the ``ipn_holds`` an IPN may take at a time (none: no bound)."""
        if self._ipn_holds is None:
            yield
            return
        async with self._ipn_holds:
            yield

    async def _move(self, cur: aiopg.Cursor, deposit: Deposit, status: DepositStatus) -> None:
        if status is not DepositStatus.FINISHED:
            await cur.execute(q.SET_STATUS, {"id": str(deposit.id), "status": status.value})
            return
        posted = await self.wallet.credit(
            deposit.user_id,
            deposit.currency,
            deposit.amount,
            source=DEPOSITS_SOURCE,
            kind="deposit",
            idempotency_key=_credit_key(deposit.id),
            reference=f"deposit:{deposit.id}",
        )
        await cur.execute(
            q.MARK_FINISHED, {"id": str(deposit.id), "transaction_id": posted.transaction_id}
        )


def _credit_key(deposit_id: uuid.UUID) -> str:
    """The wallet's idempotency key of a deposit's credit: one credit per deposit."""
    return f"deposit:{deposit_id}"


def _same_terms(existing: Deposit, currency: str, amount: Decimal) -> Deposit:
    """The deposit made with this key, provided it was for the same currency and amount."""
    if (existing.currency, existing.amount) != (currency, amount):
        raise Conflict(
            "Idempotency-Key already used for a different deposit",
            service=SERVICE,
            code="idempotency_key_reused",
        )
    return existing


def _read_ipn(raw_body: bytes) -> tuple[str, DepositStatus, dict[str, Any]]:
    try:
        body = json.loads(raw_body, parse_float=Decimal)
        payment_id = body["payment_id"]
        status = DepositStatus(body["payment_status"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BadRequest(
            f"malformed IPN body ({exc})", service=SERVICE, code="invalid_ipn"
        ) from None
    if not isinstance(body, dict):
        raise BadRequest("malformed IPN body", service=SERVICE, code="invalid_ipn")
    if _holds_nul(body):  # PostgreSQL's jsonb cannot keep the callback as evidence
        raise BadRequest("malformed IPN body (a NUL character)", service=SERVICE,
                         code="invalid_ipn")  # fmt: skip
    number = _payment_id(payment_id)
    if number is None:
        raise BadRequest(
            "malformed IPN body (payment_id: must be a whole number)",
            service=SERVICE, code="invalid_ipn",
        )  # fmt: skip
    return number, status, body


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def _payment_id(value: object) -> str | None:
    """The provider's id of a payment, in digits: it sends a number (``1.0`` is one too) or a
    string of digits; nothing else is looked up."""
    if isinstance(value, str):
        return value if _PAYMENT_ID.fullmatch(value) else None
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    if value < 0 or value != int(value) or value >= 10**PAYMENT_ID_DIGITS:
        return None
    return str(int(value))


_PAYMENT_ID = re.compile(PAYMENT_ID_PATTERN.strip("^$"))


def _mismatch(deposit: Deposit, body: dict[str, Any]) -> list[str]:
    """How a callback's order, currency and amount differ from its deposit's (none: [])."""
    wrong = []
    if str(body.get("order_id")) != str(deposit.id):
        wrong.append(f"order_id {body.get('order_id')!r}, not {str(deposit.id)!r}")
    ticker = PROVIDER_TICKERS[deposit.currency]
    if str(body.get("price_currency", "")).lower() != ticker:
        wrong.append(f"price_currency {body.get('price_currency')!r}, not {ticker!r}")
    try:  # a signalling NaN raises even when compared
        same_amount = Decimal(str(body.get("price_amount"))) == deposit.amount
    except ArithmeticError:
        same_amount = False
    if not same_amount:
        wrong.append(f"price_amount {body.get('price_amount')!r}, not {deposit.amount}")
    return wrong


def _deposit(row: Any) -> Deposit:
    (id_, user_id, currency, amount, status, payment_id, pay_address, pay_amount,
     pay_currency, credited_at, created_at) = row  # fmt: skip
    return Deposit(
        id=uuid.UUID(str(id_)),
        user_id=uuid.UUID(str(user_id)),
        currency=currency,
        amount=Decimal(amount),
        status=DepositStatus(status),
        provider_payment_id=payment_id,
        pay_address=pay_address,
        pay_amount=Decimal(pay_amount) if pay_amount is not None else None,
        pay_currency=pay_currency,
        credited_at=credited_at,
        created_at=created_at,
    )
