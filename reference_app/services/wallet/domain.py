"""Wallet domain: accounts, legs of a ledger transaction, escrow lock states. No I/O."""

from __future__ import annotations

import uuid
import zlib
from collections import defaultdict
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum


class AccountKind(StrEnum):
    AVAILABLE = "available"
    ESCROW = "escrow"
    SYSTEM = "system"


class LockState(StrEnum):
    HELD = "held"
    RELEASED = "released"
    UNLOCKED = "unlocked"


#: where deposited money comes from (the outside world)
DEPOSITS_SOURCE = "system:deposits"
#: where admin funding comes from
TREASURY = "system:treasury"
#: where withdrawn money goes
WITHDRAWALS = "system:withdrawals"
#: the other side of every swap
SWAP_DESK = "system:swap"
#: fees earned by the platform
PLATFORM_REVENUE = "platform:revenue"
#: what express buy sells from: funded by the admin from the treasury, per currency, and
#: never overdrawn (unlike the other system accounts, which stand for the outside world)
PLATFORM_LIQUIDITY = "platform:liquidity"
#: the accounts that stand for the outside world (they may go negative, nothing is checked
#: against their balance): each is spread over :data:`SYSTEM_SLOTS` rows, so that postings
#: do not queue on one row lock (the IPN credits of a currency all touch system:deposits)
SPREAD_ACCOUNTS = frozenset({DEPOSITS_SOURCE, TREASURY, WITHDRAWALS, SWAP_DESK, PLATFORM_REVENUE})
SYSTEM_SLOTS = 16


@dataclass(frozen=True)
class AccountRef:
    """An account by its natural key; ``slot`` is one row of a spread account."""

    owner: str
    currency: str
    kind: AccountKind
    slot: int = 0

    @classmethod
    def available(cls, user: uuid.UUID, currency: str) -> AccountRef:
        return cls(str(user), currency, AccountKind.AVAILABLE)

    @classmethod
    def escrow(cls, user: uuid.UUID, currency: str) -> AccountRef:
        return cls(str(user), currency, AccountKind.ESCROW)

    @classmethod
    def system(cls, name: str, currency: str) -> AccountRef:
        return cls(name, currency, AccountKind.SYSTEM)


@dataclass(frozen=True)
class Leg:
    """One entry of a ledger transaction: ``amount`` added to ``account`` (negative: taken)."""

    account: AccountRef
    amount: Decimal


class UnbalancedTransaction(ValueError):
    """The legs of a transaction do not sum to zero in each currency (a bug, never input)."""


def check_balanced(legs: list[Leg]) -> None:
    """Double entry: per currency, what is taken equals what is given."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for leg in legs:
        if leg.amount == 0:
            raise UnbalancedTransaction(f"zero leg on {leg.account}")
        totals[leg.account.currency] += leg.amount
    unbalanced = {c: t for c, t in totals.items() if t != 0}
    if unbalanced:
        raise UnbalancedTransaction(f"legs do not balance: {unbalanced}")


def spread(legs: list[Leg], key: str) -> list[Leg]:
    """``legs`` with each leg on a spread account moved to one of its slots, chosen by the
    transaction's idempotency ``key`` (the same key always lands on the same slot)."""
    slot = zlib.crc32(key.encode()) % SYSTEM_SLOTS
    return [
        Leg(replace(leg.account, slot=slot), leg.amount)
        if leg.account.kind is AccountKind.SYSTEM and leg.account.owner in SPREAD_ACCOUNTS
        else leg
        for leg in legs
    ]


def accounts_of(legs: list[Leg]) -> list[AccountRef]:
    """The accounts ``legs`` touch, each once, in the order every transaction creates and
    locks them: by natural key, whatever the order of the legs (and whatever the order a
    set would give, which differs between worker processes). Two first movements that
    create the same accounts at once then wait for each other in turn, never in a cycle."""
    return sorted(
        {leg.account for leg in legs},
        key=lambda a: (a.owner, a.currency, a.kind.value, a.slot),
    )


def transfer(source: AccountRef, target: AccountRef, amount: Decimal) -> list[Leg]:
    """The two legs moving ``amount`` from ``source`` to ``target``."""
    return [Leg(source, -amount), Leg(target, amount)]


@dataclass(frozen=True)
class Balance:
    currency: str
    available: Decimal
    escrow: Decimal


#: the kind of the empty transaction that spends an idempotency key nothing was posted under
VOID_KIND = "void"


@dataclass(frozen=True)
class Posted:
    """The outcome of a money movement; ``replayed`` when the idempotency key was seen."""

    transaction_id: int
    replayed: bool


@dataclass(frozen=True)
class EscrowLock:
    reference: str
    owner: uuid.UUID
    currency: str
    amount: Decimal
    state: LockState
    released_to: uuid.UUID | None
    fee: Decimal | None


LOCK_TRANSITIONS: dict[LockState, frozenset[LockState]] = {
    LockState.HELD: frozenset({LockState.RELEASED, LockState.UNLOCKED}),
    LockState.RELEASED: frozenset(),
    LockState.UNLOCKED: frozenset(),
}
