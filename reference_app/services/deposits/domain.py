"""Deposit domain: NOWPayments' payment states and the transitions a callback may make."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

#: the provider's id of a payment when sent as a string: digits only (as a number it is a
#: whole number below 10**PAYMENT_ID_DIGITS)
PAYMENT_ID_DIGITS = 30
PAYMENT_ID_PATTERN = f"^[0-9]{{1,{PAYMENT_ID_DIGITS}}}$"


class DepositStatus(StrEnum):
    WAITING = "waiting"
    CONFIRMING = "confirming"
    CONFIRMED = "confirmed"
    SENDING = "sending"
    PARTIALLY_PAID = "partially_paid"
    FINISHED = "finished"
    FAILED = "failed"
    REFUNDED = "refunded"
    EXPIRED = "expired"


S = DepositStatus
_PROGRESS = {S.CONFIRMING, S.CONFIRMED, S.SENDING, S.PARTIALLY_PAID, S.FINISHED, S.FAILED}

#: where an IPN callback may move a deposit. Callbacks can arrive out of order, so forward
#: jumps are allowed; there is no way back from ``finished`` or the other final states.
#: ``expired`` is the app's own clock, not the provider's: NOWPayments takes a payment for
#: days after the app gave up waiting, so a late payment moves an expired deposit on like
#: a waiting one, and its ``finished`` is credited (refused, the money would arrive and
#: never be credited).
TRANSITIONS: dict[DepositStatus, frozenset[DepositStatus]] = {
    S.WAITING: frozenset(_PROGRESS | {S.EXPIRED}),
    S.CONFIRMING: frozenset({S.CONFIRMED, S.SENDING, S.PARTIALLY_PAID, S.FINISHED, S.FAILED}),
    S.CONFIRMED: frozenset({S.SENDING, S.PARTIALLY_PAID, S.FINISHED, S.FAILED}),
    S.SENDING: frozenset({S.PARTIALLY_PAID, S.FINISHED, S.FAILED}),
    S.PARTIALLY_PAID: frozenset({S.CONFIRMING, S.CONFIRMED, S.SENDING, S.FINISHED, S.FAILED,
                                 S.EXPIRED}),
    S.FINISHED: frozenset(),
    S.FAILED: frozenset({S.REFUNDED}),
    S.REFUNDED: frozenset(),
    S.EXPIRED: frozenset(_PROGRESS),
}  # fmt: skip


class Outcome(StrEnum):
    """What a callback did."""

    APPLIED = "applied"
    REPEATED = "repeated"  # same status again: a no-op
    REFUSED = "refused"  # not allowed from the current status (e.g. back from finished)
    #: for another order, currency or amount than the deposit's: recorded, then refused
    MISMATCHED = "mismatched"


def judge(current: DepositStatus, reported: DepositStatus) -> Outcome:
    """Whether a callback reporting ``reported`` moves a deposit that is ``current``."""
    if reported == current:
        return Outcome.REPEATED
    if reported in TRANSITIONS[current]:
        return Outcome.APPLIED
    return Outcome.REFUSED


@dataclass(frozen=True)
class Deposit:
    id: uuid.UUID
    user_id: uuid.UUID
    currency: str
    amount: Decimal
    status: DepositStatus
    provider_payment_id: str | None
    pay_address: str | None
    pay_amount: Decimal | None
    pay_currency: str | None
    credited_at: datetime.datetime | None
    created_at: datetime.datetime


@dataclass(frozen=True)
class ProviderPayment:
    """What the provider answered when asked for a payment."""

    payment_id: str
    status: str
    pay_address: str
    pay_amount: Decimal
    pay_currency: str
