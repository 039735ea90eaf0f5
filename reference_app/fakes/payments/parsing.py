"""Reading the provider API's requests: amounts, currencies, statuses, URLs, the API key."""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from aiohttp import web
from yarl import URL

from isolation_harness.reference_app.fakes.control import FakeError
from isolation_harness.reference_app.fakes.payments.book import (
    CURRENCIES,
    STATUS_NAMES,
    NewPayment,
    PaymentStatus,
)
from isolation_harness.reference_app.fakes.payments.dialect import invalid

MAX_DECIMALS = 18


MAX_AMOUNT = Decimal(10) ** 15


_AMOUNT_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


_PAYMENT_ID = re.compile(r"[0-9]{1,18}")


def check_api_key(request: web.Request, api_key: str) -> None:
    given = request.headers.get("x-api-key", "")
    if not hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), api_key.encode("utf-8", "surrogatepass")
    ):
        raise FakeError(401, "INVALID_API_KEY", "Invalid api key")


def requested_payment_id(request: web.Request) -> int:
    text = request.match_info["payment_id"]
    if not _PAYMENT_ID.fullmatch(text):
        raise invalid(f"payment_id must be a number, not {text!r}")
    return int(text)


def parse_new_payment(body: Mapping[str, Any]) -> NewPayment:
    price_currency = parse_currency(body.get("price_currency"), "price_currency")
    pay_currency = parse_currency(body.get("pay_currency"), "pay_currency")
    if CURRENCIES[pay_currency].address_prefix is None:
        raise invalid(f'"pay_currency" must be a crypto currency, not {pay_currency}')
    pay_amount = None
    if body.get("pay_amount") is not None:
        pay_amount = parse_amount(body["pay_amount"], "pay_amount")
    return NewPayment(
        price_amount=parse_amount(body.get("price_amount"), "price_amount"),
        price_currency=price_currency,
        pay_currency=pay_currency,
        pay_amount=pay_amount,
        order_id=optional_text(body, "order_id"),
        order_description=optional_text(body, "order_description"),
        ipn_callback_url=parse_callback_url(body.get("ipn_callback_url")),
    )


def parse_amount(value: object, name: str, *, allow_zero: bool = False) -> Decimal:
    """A non-negative exact amount from a JSON number or a decimal string."""
    if value is None:
        raise invalid(f'"{name}" is required')
    if isinstance(value, str) and _AMOUNT_TEXT.fullmatch(value.strip()):
        value = Decimal(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise invalid(f'"{name}" must be a number')
    amount = Decimal(value)
    if amount < 0 or (amount == 0 and not allow_zero):
        raise invalid(f'"{name}" must be {"at least 0" if allow_zero else "greater than 0"}')
    if amount >= MAX_AMOUNT:
        raise invalid(f'"{name}" must be less than {MAX_AMOUNT:f}')
    if decimal_places(amount) > MAX_DECIMALS:
        raise invalid(f'"{name}" takes at most {MAX_DECIMALS} decimal places')
    return amount


def decimal_places(amount: Decimal) -> int:
    if amount.is_zero():
        return 0
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing_zeros))


def parse_currency(value: object, name: str) -> str:
    if value is None:
        raise invalid(f'"{name}" is required')
    code = value.strip().lower() if isinstance(value, str) else ""
    if code not in CURRENCIES:
        known = ", ".join(CURRENCIES)
        raise invalid(f'"{name}" must be one of {known}, not {value!r}')
    return code


def parse_status(value: object) -> PaymentStatus:
    if isinstance(value, str) and value in STATUS_NAMES:
        return PaymentStatus(value)
    known = ", ".join(PaymentStatus)
    raise invalid(f'"status" must be one of {known}, not {value!r}')


def optional_text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid(f'"{name}" must be a string')
    return value


def parse_callback_url(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            url = URL(value)
        except ValueError:
            url = None
        if url is not None and url.scheme in ("http", "https") and url.host:
            return value
    raise invalid('"ipn_callback_url" must be an http or https URL')
