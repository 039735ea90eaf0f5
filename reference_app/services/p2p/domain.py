"""P2P domain: offers, trades and the trade state machine. No I/O.

A trade's money lives in the wallet, as one escrow lock named by :func:`escrow_reference`.
The trade row records where the trade is (``state``) and, while a transition that moves
money is under way, where it is going (``moving_to``): the wallet is another database, so
a transition that moves money is three steps (record the intent, move the money, record the
result) and whoever finds an intent recorded finishes it.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, localcontext
from enum import StrEnum

from isolation_harness.reference_app.money import MAX_AMOUNT, unit

#: fiat currencies an offer may be priced in, with the decimal places of a price
FIAT_CURRENCIES: Mapping[str, int] = {"USD": 2, "EUR": 2, "GBP": 2}


class OfferState(StrEnum):
    OPEN = "open"
    CANCELLED = "cancelled"


class TradeState(StrEnum):
    #: recorded, the seller's escrow not yet locked (its intent is ``open``)
    PENDING = "pending"
    OPEN = "open"
    PAID = "paid"
    RELEASED = "released"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    DISPUTED = "disputed"
    RESOLVED_BUYER = "resolved_buyer"
    RESOLVED_SELLER = "resolved_seller"
    #: the seller could not cover the trade when it opened: nothing was locked
    FAILED = "failed"


class Actor(StrEnum):
    """Who asks for a transition."""

    BUYER = "buyer"
    SELLER = "seller"
    ADMIN = "admin"
    #: the platform itself: opening's outcome, expiry
    SYSTEM = "system"


class EscrowMove(StrEnum):
    """What the wallet does when a trade reaches a state."""

    LOCK = "lock"  # seller's available -> seller's escrow
    RELEASE = "release"  # seller's escrow -> buyer's available, less the fee
    UNLOCK = "unlock"  # seller's escrow -> seller's available


TRANSITIONS: Mapping[TradeState, frozenset[TradeState]] = {
    TradeState.PENDING: frozenset({TradeState.OPEN, TradeState.FAILED}),
    TradeState.OPEN: frozenset({TradeState.PAID, TradeState.CANCELLED, TradeState.EXPIRED}),
    TradeState.PAID: frozenset({TradeState.RELEASED, TradeState.DISPUTED}),
    TradeState.DISPUTED: frozenset({TradeState.RESOLVED_BUYER, TradeState.RESOLVED_SELLER}),
    TradeState.RELEASED: frozenset(),
    TradeState.CANCELLED: frozenset(),
    TradeState.EXPIRED: frozenset(),
    TradeState.RESOLVED_BUYER: frozenset(),
    TradeState.RESOLVED_SELLER: frozenset(),
    TradeState.FAILED: frozenset(),
}

#: who may move a trade into each state
MAY_REQUEST: Mapping[TradeState, frozenset[Actor]] = {
    TradeState.OPEN: frozenset({Actor.SYSTEM}),
    TradeState.FAILED: frozenset({Actor.SYSTEM}),
    TradeState.PAID: frozenset({Actor.BUYER}),
    TradeState.RELEASED: frozenset({Actor.SELLER}),
    # The seller may not cancel: the buyer may be paying right now. An unpaid trade expires.
    TradeState.CANCELLED: frozenset({Actor.BUYER}),
    TradeState.EXPIRED: frozenset({Actor.SYSTEM}),
    # the system too: a paid trade its seller leaves unreleased goes to the admin
    TradeState.DISPUTED: frozenset({Actor.BUYER, Actor.SELLER, Actor.SYSTEM}),
    TradeState.RESOLVED_BUYER: frozenset({Actor.ADMIN}),
    TradeState.RESOLVED_SELLER: frozenset({Actor.ADMIN}),
}

#: the wallet's part in reaching a state; states absent here move no money
ESCROW_MOVES: Mapping[TradeState, EscrowMove] = {
    TradeState.OPEN: EscrowMove.LOCK,
    TradeState.RELEASED: EscrowMove.RELEASE,
    TradeState.RESOLVED_BUYER: EscrowMove.RELEASE,
    TradeState.CANCELLED: EscrowMove.UNLOCK,
    TradeState.EXPIRED: EscrowMove.UNLOCK,
    TradeState.RESOLVED_SELLER: EscrowMove.UNLOCK,
}

#: end states in which the seller keeps the crypto: the amount goes back on the offer
RETURNS_TO_OFFER: frozenset[TradeState] = frozenset(
    {TradeState.FAILED, TradeState.CANCELLED, TradeState.EXPIRED, TradeState.RESOLVED_SELLER}
)

#: the dispute's outcome for each winner
RESOLUTIONS: Mapping[Actor, TradeState] = {
    Actor.BUYER: TradeState.RESOLVED_BUYER,
    Actor.SELLER: TradeState.RESOLVED_SELLER,
}


# -- refusals: the service turns them into the app's errors ---------------------------------


class Refused(Exception):
    """A p2p rule says no; ``code`` is the machine code of the answer."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class BadTerms(Refused):
    """The request contradicts itself or the offer's bounds (answered 400)."""


class NotAllowed(Refused):
    """This party may not do this (answered 403)."""


class StateConflict(Refused):
    """The current state does not allow it (answered 409)."""


# -- offers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    id: uuid.UUID
    seller: uuid.UUID
    currency: str
    fiat: str
    price: Decimal
    amount: Decimal
    remaining: Decimal
    min_amount: Decimal
    max_amount: Decimal
    state: OfferState
    created_at: datetime.datetime

    def check_fill(self, buyer: uuid.UUID, amount: Decimal) -> None:
        """Whether ``buyer`` may open a trade of ``amount`` on this offer now."""
        if buyer == self.seller:
            raise BadTerms("you cannot trade on your own offer", "own_offer")
        if self.state is not OfferState.OPEN:
            raise StateConflict(f"the offer is {self.state.value}", "offer_closed")
        if not self.min_amount <= amount <= self.max_amount:
            raise BadTerms(
                f"amount: must be between {self.min_amount:f} and {self.max_amount:f} "
                f"{self.currency} on this offer",
                "invalid_amount",
            )
        if amount > self.remaining:
            raise StateConflict(
                f"the offer has {self.remaining:f} {self.currency} left", "offer_exhausted"
            )


#: digits that hold any product of two accepted amounts exactly (each at most 10**15, with
#: at most 18 places), where the default context's 28 would round it
EXACT_DIGITS = 80


def _product(one: Decimal, other: Decimal) -> Decimal:
    """``one * other`` without rounding."""
    with localcontext() as context:
        context.prec = EXACT_DIGITS
        return one * other


def check_offer_terms(
    currency: str, fiat: str, price: Decimal, amount: Decimal, min_amount: Decimal,
    max_amount: Decimal,
) -> None:  # fmt: skip
    """The terms of a new offer hold together (each value is already positive and known)."""
    if currency == fiat:
        raise BadTerms("fiat: must differ from currency", "invalid_currency")
    for name, value in (("price", price), ("amount", amount), ("min_amount", min_amount),
                        ("max_amount", max_amount)):  # fmt: skip
        if value <= 0:
            raise BadTerms(f"{name}: must be positive", "invalid_amount")
    if min_amount > max_amount:
        raise BadTerms("min_amount: must not exceed max_amount", "invalid_terms")
    if max_amount > amount:
        raise BadTerms("max_amount: must not exceed amount", "invalid_terms")
    if _product(amount, price) > MAX_AMOUNT:
        # what a buyer of all of it pays: it must fit where every amount fits
        raise BadTerms(
            f"amount: at this price it is worth more than {MAX_AMOUNT:f} {fiat}",
            "invalid_terms",
        )


# -- trades ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trade:
    id: uuid.UUID
    offer_id: uuid.UUID
    seller: uuid.UUID
    buyer: uuid.UUID
    currency: str
    fiat: str
    amount: Decimal
    price: Decimal
    fiat_total: Decimal
    fee: Decimal | None
    state: TradeState
    #: the state a money-moving transition under way will reach
    moving_to: TradeState | None
    moving_by: Actor | None
    created_at: datetime.datetime
    expires_at: datetime.datetime
    updated_at: datetime.datetime

    @property
    def escrow_reference(self) -> str:
        return escrow_reference(self.id)

    def party(self, user: uuid.UUID) -> Actor | None:
        """The user's side of the trade, or None for anyone else."""
        if user == self.buyer:
            return Actor.BUYER
        if user == self.seller:
            return Actor.SELLER
        return None


def escrow_reference(trade_id: uuid.UUID) -> str:
    """The wallet's name for a trade's escrow lock: the same trade, the same lock."""
    return f"p2p:trade:{trade_id}"


def check_transition(state: TradeState, target: TradeState, actor: Actor) -> None:
    """Whether ``actor`` may move a trade from ``state`` to ``target``."""
    if actor not in MAY_REQUEST[target]:
        raise NotAllowed(f"the {actor.value} cannot make a trade {target.value}", "not_allowed")
    if target not in TRANSITIONS[state]:
        raise StateConflict(
            f"the trade is {state.value}, it cannot become {target.value}", "invalid_transition"
        )


def fiat_total(amount: Decimal, price: Decimal, fiat_places: int) -> Decimal:
    """What the buyer pays, rounded down to the fiat's precision."""
    return _product(amount, price).quantize(unit(fiat_places), rounding=ROUND_DOWN)


def fee_for(amount: Decimal, rate: Decimal, places: int) -> Decimal:
    """The platform's fee on a released trade, rounded down to the currency's precision."""
    return _product(amount, rate).quantize(unit(places), rounding=ROUND_DOWN)
