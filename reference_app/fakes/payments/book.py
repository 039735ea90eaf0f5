"""The provider's state: payments, their states and amounts, the IPNs sent. No I/O."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_UP, Decimal, localcontext
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from isolation_harness.reference_app.fakes.control import Behaviour, FakeError, Tally
from isolation_harness.reference_app.fakes.payments.signing import signature as signature_of
from isolation_harness.reference_app.fakes.payments.signing import write


class PaymentStatus(StrEnum):
    """The states of a NOWPayments payment, with their names."""

    WAITING = "waiting"
    CONFIRMING = "confirming"
    CONFIRMED = "confirmed"
    SENDING = "sending"
    PARTIALLY_PAID = "partially_paid"
    FINISHED = "finished"
    FAILED = "failed"
    REFUNDED = "refunded"
    EXPIRED = "expired"


STATUS_NAMES = frozenset(status.value for status in PaymentStatus)


#: the states a payment goes through when all is well
HAPPY_PATH = (
    PaymentStatus.WAITING,
    PaymentStatus.CONFIRMING,
    PaymentStatus.CONFIRMED,
    PaymentStatus.SENDING,
    PaymentStatus.FINISHED,
)


#: reaching one of these means the coins arrived: ``actually_paid`` defaults to ``pay_amount``
PAID = frozenset(HAPPY_PATH[1:])


@dataclass(frozen=True)
class Currency:
    """A currency the fake knows: its fixed dollar value and, if it can be paid in, how."""

    usd_value: Decimal
    decimals: int
    #: None for fiat, which can price a payment but not pay it
    address_prefix: str | None = None
    address_length: int = 0


#: the fixed rates (US dollars per unit) that turn ``price_amount`` into ``pay_amount``
CURRENCIES: Mapping[str, Currency] = MappingProxyType(
    {
        "usd": Currency(Decimal("1"), 2),
        "eur": Currency(Decimal("1.08"), 2),
        "btc": Currency(Decimal("60000"), 8, "bc1q", 42),
        "eth": Currency(Decimal("3000"), 8, "0x", 42),
        "ltc": Currency(Decimal("80"), 8, "ltc1q", 43),
        "usdttrc20": Currency(Decimal("1"), 6, "T", 34),
    }
)


DEFAULT_FIRST_PAYMENT_ID = 5_000_000_001


@dataclass(frozen=True)
class PaymentsFakeConfig:
    """What the fake needs: the key clients send, the secret it signs IPNs with."""

    api_key: str
    ipn_secret: str
    #: seconds the app has to answer one IPN
    ipn_timeout: float = 5.0
    first_payment_id: int = DEFAULT_FIRST_PAYMENT_ID


@dataclass
class Payment:
    """One payment, as the provider sees it."""

    payment_id: int
    status: PaymentStatus
    pay_address: str
    price_amount: Decimal
    price_currency: str
    pay_amount: Decimal
    pay_currency: str
    actually_paid: Decimal
    order_id: str | None
    order_description: str | None
    ipn_callback_url: str | None
    purchase_id: str
    created_at: str
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "payment_id": self.payment_id,
            "payment_status": self.status,
            "pay_address": self.pay_address,
            "price_amount": self.price_amount,
            "price_currency": self.price_currency,
            "pay_amount": self.pay_amount,
            "actually_paid": self.actually_paid,
            "pay_currency": self.pay_currency,
            "order_id": self.order_id,
            "order_description": self.order_description,
            "ipn_callback_url": self.ipn_callback_url,
            "purchase_id": self.purchase_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class NewPayment:
    """A validated ``POST /v1/payment`` body."""

    price_amount: Decimal
    price_currency: str
    pay_currency: str
    pay_amount: Decimal | None
    order_id: str | None
    order_description: str | None
    ipn_callback_url: str | None


@dataclass(frozen=True)
class Ipn:
    """One notification: the exact bytes sent and their signature."""

    payment_id: int
    payment_status: PaymentStatus
    url: str | None
    body: bytes
    signature: str


@dataclass(frozen=True)
class IpnOutcome:
    """What became of one IPN: ``status`` is the app's HTTP answer, if any."""

    delivered: bool
    status: int | None
    error: str | None

    def to_json(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "status": self.status, "error": self.error}


@dataclass(frozen=True)
class IpnAttempt:
    ipn: Ipn
    outcome: IpnOutcome

    def to_json(self) -> dict[str, Any]:
        return {
            "payment_id": self.ipn.payment_id,
            "payment_status": self.ipn.payment_status,
            "url": self.ipn.url,
            **self.outcome.to_json(),
        }


class PaymentBook:
    """All the fake's state: payments, the IPNs sent, the current behaviour. No I/O."""

    def __init__(self, config: PaymentsFakeConfig) -> None:
        self.config = config
        self.behaviour = Behaviour()
        #: answers given while misbehaving, over the fake's life (never reset)
        self.misbehaved = Tally()
        self._payments: dict[int, Payment] = {}
        self._next_id = config.first_payment_id
        self._last_ipn: dict[int, Ipn] = {}
        self._attempts: list[IpnAttempt] = []
        self._locks: dict[int, asyncio.Lock] = {}
        #: control requests still delivering IPNs (or waiting to): the book is not final yet
        self.delivering = 0

    def create(self, new: NewPayment) -> Payment:
        payment_id = self._next_id
        self._next_id += 1
        now = timestamp()
        payment = Payment(
            payment_id=payment_id,
            status=PaymentStatus.WAITING,
            pay_address=pay_address(payment_id, new.pay_currency),
            price_amount=new.price_amount,
            price_currency=new.price_currency,
            pay_amount=new.pay_amount
            if new.pay_amount is not None
            else convert(new.price_amount, new.price_currency, new.pay_currency),
            pay_currency=new.pay_currency,
            actually_paid=Decimal(0),
            order_id=new.order_id,
            order_description=new.order_description,
            ipn_callback_url=new.ipn_callback_url,
            purchase_id=purchase_id(payment_id),
            created_at=now,
            updated_at=now,
        )
        self._payments[payment_id] = payment
        return payment

    def get(self, payment_id: int) -> Payment:
        try:
            return self._payments[payment_id]
        except KeyError:
            raise FakeError(404, "PAYMENT_NOT_FOUND", f"payment {payment_id} not found") from None

    def all(self) -> list[Payment]:
        return [self._payments[key] for key in sorted(self._payments)]

    def move(self, payment_id: int, status: PaymentStatus, actually_paid: Decimal | None) -> Ipn:
        """Put the payment in ``status`` and return the IPN that tells so."""
        payment = self.get(payment_id)
        if actually_paid is not None:
            payment.actually_paid = actually_paid
        elif status in PAID and not payment.actually_paid:
            payment.actually_paid = payment.pay_amount
        payment.status = status
        payment.updated_at = timestamp()
        body = write(payment.to_json())
        ipn = Ipn(
            payment_id=payment_id,
            payment_status=status,
            url=payment.ipn_callback_url,
            body=body,
            signature=signature_of(body, self.config.ipn_secret),
        )
        self._last_ipn[payment_id] = ipn
        return ipn

    def last_ipn(self, payment_id: int) -> Ipn:
        self.get(payment_id)
        try:
            return self._last_ipn[payment_id]
        except KeyError:
            raise FakeError(
                409, "NO_IPN_YET", f"no IPN was sent for payment {payment_id} yet"
            ) from None

    def record(self, attempt: IpnAttempt) -> None:
        self._attempts.append(attempt)

    def attempts(self) -> list[IpnAttempt]:
        return list(self._attempts)

    @contextlib.asynccontextmanager
    async def delivering_ipns(self, payment_id: int) -> AsyncIterator[None]:
        """Hold the lock that keeps one payment's changes and IPNs in order, counted in
        :attr:`delivering` from the moment it is asked for until it is given back."""
        self.delivering += 1
        try:
            async with self._locks.setdefault(payment_id, asyncio.Lock()):
                yield
        finally:
            self.delivering -= 1

    def reset(self) -> None:
        self._payments.clear()
        self._next_id = self.config.first_payment_id
        self._last_ipn.clear()
        self._attempts.clear()
        self._locks.clear()
        self.behaviour = Behaviour()


def convert(amount: Decimal, source: str, target: str) -> Decimal:
    """``amount`` of ``source`` in ``target``, rounded up to ``target``'s decimals."""
    if source == target:
        return amount
    with localcontext() as context:
        # wide enough that no digit that matters is rounded before the quantize
        context.prec = 60
        exact = amount * CURRENCIES[source].usd_value / CURRENCIES[target].usd_value
        return exact.quantize(Decimal(1).scaleb(-CURRENCIES[target].decimals), ROUND_UP)


def pay_address(payment_id: int, currency: str) -> str:
    spec = CURRENCIES[currency]
    assert spec.address_prefix is not None
    digest = hashlib.sha256(f"address:{currency}:{payment_id}".encode()).hexdigest()
    return spec.address_prefix + digest[: spec.address_length - len(spec.address_prefix)]


def purchase_id(payment_id: int) -> str:
    digest = hashlib.sha256(f"purchase:{payment_id}".encode()).digest()
    return str(1_000_000_000 + int.from_bytes(digest[:8], "big") % 9_000_000_000)


def timestamp() -> str:
    """Now, as NOWPayments writes times: ``2020-12-22T15:00:22.742Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
