"""The amount strings the OpenAPI document describes (``amount_pattern``) are exactly those
the app accepts (``parse_amount``), and currency codes are taken as listed, nothing else."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from isolation_harness.reference_app.errors import BadRequest
from isolation_harness.reference_app.money import (
    DEFAULT_CURRENCIES,
    amount_pattern,
    parse_amount,
    parse_currency,
)

#: strings made of what amounts and near-amounts are made of
NEAR_AMOUNTS = st.text(alphabet="0123456789.-+eE _\n", max_size=20)


def accepted(text: str, currency: str) -> bool:
    try:
        parse_amount(text, currency, DEFAULT_CURRENCIES)
    except BadRequest:
        return False
    return True


@settings(max_examples=500, derandomize=True, database=None)
@given(text=NEAR_AMOUNTS | st.from_regex(r"\A[0-9]{1,17}(\.[0-9]{1,10})?\Z"),
       currency=st.sampled_from(sorted(DEFAULT_CURRENCIES)))  # fmt: skip
@example(text="0.00000001", currency="BTC")
@example(text="999999999999999.99", currency="USD")
@example(text="1000000000000000", currency="USD")
@example(text="0.000", currency="ETH")
@example(text="1\n", currency="BTC")
@example(text="007", currency="BTC")
def test_the_pattern_describes_exactly_the_amounts_accepted(text: str, currency: str) -> None:
    described = re.search(amount_pattern(DEFAULT_CURRENCIES[currency]), text) is not None
    # ECMA-262's $ ends the text; Python's would also match before a final newline
    described = described and not text.endswith("\n")
    assert described == accepted(text, currency), (text, currency)


@pytest.mark.parametrize(
    ("text", "value"),
    [("0.5", Decimal("0.5")), ("10", Decimal(10)), ("0.00000001", Decimal("1e-8"))],
)
def test_plain_decimal_strings_are_amounts(text: str, value: Decimal) -> None:
    assert parse_amount(text, "BTC", DEFAULT_CURRENCIES) == value


@pytest.mark.parametrize(
    "value", ["1e-3", " 1", "1 ", "+1", "-1", ".5", "5.", "01", "1_000", "NaN", "0", "0.0", 1, 1.5]
)
def test_anything_else_is_refused(value: object) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_amount(value, "BTC", DEFAULT_CURRENCIES)
    assert refused.value.code == "invalid_amount"


@pytest.mark.parametrize("code", ["btc", " BTC", "BTC ", "Btc", "", 5])
def test_currency_codes_are_taken_as_listed(code: object) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_currency(code, DEFAULT_CURRENCIES)
    assert refused.value.code == "invalid_currency"
    assert parse_currency("BTC", DEFAULT_CURRENCIES) == "BTC"
