"""Money: ``Decimal`` end to end, validated at the edge (positive, precision, known currency)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

from isolation_harness.reference_app.errors import BadRequest

#: currency -> number of decimal places accepted
DEFAULT_CURRENCIES: Mapping[str, int] = {"BTC": 8, "ETH": 8, "USDT": 6, "USD": 2}
#: the largest amount accepted (NUMERIC(38, 18) holds 20 integer digits)
MAX_AMOUNT = Decimal("1e15")
#: decimal places of a rate (the scale of NUMERIC(38, 18))
RATE_PLACES = 18


class UnquotableAmount(ValueError):
    """An amount a quote cannot be made for (``code`` says why: too small, too large)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def unit(places: int) -> Decimal:
    """The smallest amount with ``places`` decimal places: ``unit(2) == Decimal("0.01")``."""
    return Decimal(1).scaleb(-places)


def parse_currency(value: object, currencies: Mapping[str, int], field: str = "currency") -> str:
    """A known currency code, upper-case."""
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{field}: must be a currency code such as BTC", code="invalid_currency")
    code = value.strip().upper()
    if code not in currencies:
        known = ", ".join(sorted(currencies))
        raise BadRequest(
            f"{field}: unknown currency {value!r} (known: {known})", code="invalid_currency"
        )
    return code


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
    """A positive amount with at most the currency's decimal places.

    Accepts a decimal string (preferred) or an integer; floats are refused, since they
    cannot represent most amounts exactly.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadRequest(f'{field}: must be a decimal string such as "0.5"', code="invalid_amount")
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise BadRequest(f"{field}: {value!r} is not a number", code="invalid_amount") from None
    if not amount.is_finite():
        raise BadRequest(f"{field}: must be a finite number", code="invalid_amount")
    if amount <= 0:
        raise BadRequest(f"{field}: must be positive", code="invalid_amount")
    if amount > MAX_AMOUNT:
        raise BadRequest(f"{field}: must be at most {MAX_AMOUNT:f}", code="invalid_amount")
    places = currencies[currency]
    exponent = amount.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > places:
        raise BadRequest(
            f"{field}: {currency} takes at most {places} decimal places", code="invalid_amount"
        )
    return amount


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
