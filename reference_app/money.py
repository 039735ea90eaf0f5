"""Money: ``Decimal`` end to end, validated at the edge (positive, precision, known currency)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal
from typing import Any

from isolation_harness.reference_app.errors import BadRequest

#: currency -> number of decimal places accepted
DEFAULT_CURRENCIES: Mapping[str, int] = {"BTC": 8, "ETH": 8, "USDT": 6, "USD": 2}
#: every amount accepted is below this (NUMERIC(38, 18) holds 20 integer digits)
MAX_AMOUNT = Decimal("1e15")
#: the integer digits of an amount (below :data:`MAX_AMOUNT`)
MAX_INTEGER_DIGITS = 15
#: decimal places of a rate (the scale of NUMERIC(38, 18))
RATE_PLACES = 18


#: why an amount in a quote request's syntax may still not be quoted (the price of
#: the moment decides): the 400's code -> the rule
UNQUOTABLE_RULES = {
    "amount_too_small": "the amount buys nothing after the fee at the current price",
    "amount_too_large": "the amount would buy more than 10^15 at the current price",
}


class UnquotableAmount(ValueError):
    """An amount a quote cannot be made for (``code`` says why: too small, too large)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def unit(places: int) -> Decimal:
    """The smallest amount with ``places`` decimal places: ``unit(2) == Decimal("0.01")``."""
    return Decimal(1).scaleb(-places)


def parse_currency(value: object, currencies: Mapping[str, int], field: str = "currency") -> str:
    """A known currency code, exactly as listed (upper-case, no spaces)."""
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{field}: must be a currency code such as BTC", code="invalid_currency")
    if value not in currencies:
        known = ", ".join(sorted(currencies))
        raise BadRequest(
            f"{field}: unknown currency {value!r} (known: {known})", code="invalid_currency"
        )
    return value


def parse_currency_pair(
    first: object, second: object, currencies: Mapping[str, int], fields: tuple[str, str]
) -> tuple[str, str]:
    """Two known, different currency codes (the two sides of an exchange, named ``fields``)."""
    one = parse_currency(first, currencies, field=fields[0])
    other = parse_currency(second, currencies, field=fields[1])
    if one == other:
        raise BadRequest(
            f"{fields[0]} and {fields[1]} must be different currencies", code="same_currency"
        )
    return one, other


def parse_amount(
    value: object, currency: str, currencies: Mapping[str, int], field: str = "amount"
) -> Decimal:
    """A positive amount below :data:`MAX_AMOUNT` with at most the currency's decimal places.

    Accepts a plain decimal string only (``"0.5"``: digits, at most one point, no sign,
    exponent, spaces or leading zeros): JSON numbers are refused, since a float cannot hold
    most amounts exactly. :func:`amount_pattern` describes the same strings.
    """
    if not isinstance(value, str):
        raise BadRequest(f'{field}: must be a decimal string such as "0.5"', code="invalid_amount")
    if _DECIMAL.fullmatch(value) is None:
        raise BadRequest(
            f'{field}: {value[:40]!r} is not a plain decimal string such as "0.5"',
            code="invalid_amount",
        )
    amount = Decimal(value)
    if amount <= 0:
        raise BadRequest(f"{field}: must be positive", code="invalid_amount")
    if amount >= MAX_AMOUNT:
        raise BadRequest(f"{field}: must be less than {MAX_AMOUNT:f}", code="invalid_amount")
    places = currencies[currency]
    if len(value.partition(".")[2]) > places:
        raise BadRequest(
            f"{field}: {currency} takes at most {places} decimal places", code="invalid_amount"
        )
    return amount


#: the syntax of an amount string (its value and places are checked apart)
_DECIMAL = re.compile(r"(?:0|[1-9][0-9]*)(?:\.[0-9]+)?", re.ASCII)


def amount_pattern(places: int) -> str:
    """The regular expression (ECMA-262 and Python alike) of exactly the amount strings
    :func:`parse_amount` accepts for a currency of ``places`` decimal places."""
    digits = MAX_INTEGER_DIGITS - 1
    fraction = f"(\\.[0-9]{{1,{places}}})?" if places else ""
    choices = [f"[1-9][0-9]{{0,{digits}}}{fraction}"]
    # below one: at least one digit that is not zero among the first ``places``
    choices += [f"0\\.0{{{zeros}}}[1-9][0-9]{{0,{places - zeros - 1}}}" for zeros in range(places)]
    return "^(?:" + "|".join(choices) + ")$"


def quantize(amount: Decimal, currency: str, currencies: Mapping[str, int]) -> Decimal:
    """``amount`` rounded down to the currency's precision (never in the user's favour)."""
    return amount.quantize(unit(currencies[currency]), rounding=ROUND_DOWN)


def as_decimal(value: Any) -> Decimal:
    """A ``Decimal`` read back from the database (NUMERIC comes as ``Decimal`` already)."""
    return value if isinstance(value, Decimal) else Decimal(value)


def to_json(amount: Decimal) -> str:
    """The JSON form of an amount: a plain decimal string without exponent."""
    text = format(amount.normalize(), "f")
    return text
