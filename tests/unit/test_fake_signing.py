"""The payment fake signs its IPNs with its own code (``reference_app/fakes/payments/
signing.py``), written from NOWPayments' documentation, not with the app's: a witness that
shares the app's code cannot see the app's bugs. Here the two meet: what the fake signs,
the app verifies; and an app whose canonical form is wrong refuses what the fake signs,
where a fake signing with the app's code would still have agreed with it."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from isolation_harness.reference_app import payments_signature
from isolation_harness.reference_app.fakes.payments import signing

SECRET = "ipn-secret"
#: an IPN as the fake sends one, with the amounts it writes
IPN: dict[str, Any] = {
    "payment_id": 77906729500672,
    "payment_status": "finished",
    "pay_address": "bc1qexampleaddress",
    "price_amount": Decimal("3999.50"),
    "price_currency": "usd",
    "pay_amount": Decimal("0.00029"),
    # ETH's 18 decimals: more digits than a float holds
    "actually_paid": Decimal("0.123456789012345678"),
    "pay_currency": "btc",
    "order_id": "dep-7f3a",
    "order_description": "Dépôt — 🪙",  # non-ASCII, written raw as JSON.stringify does
    "ipn_callback_url": "http://127.0.0.1:8080/api/deposits/ipn",
    "purchase_id": None,
    "created_at": "2026-12-03T10:00:00.000Z",
    "updated_at": "2026-12-03T10:00:01.000Z",
}


def test_the_app_verifies_what_the_fake_signs() -> None:
    body = signing.write(IPN)
    assert payments_signature.verify(body, signing.signature(body, SECRET), SECRET)
    # the bytes are the documented ones: sorted keys, compact, amounts as JavaScript
    # writes them (trailing zeros dropped, no exponent), non-ASCII raw
    text = body.decode()
    assert text.startswith('{"actually_paid":0.123456789012345678,"created_at":')
    assert '"pay_amount":0.00029,' in text
    assert '"price_amount":3999.5,' in text
    assert "Dépôt — 🪙" in text
    assert json.loads(text)["payment_id"] == IPN["payment_id"]
    assert not payments_signature.verify(body, signing.signature(body, "other"), SECRET)


@pytest.mark.parametrize(
    ("flaw", "setting"),
    [
        ("keys in reverse order", ("_js_sort_key", lambda key: tuple(-b for b in key.encode()))),
        ("non-ASCII escaped", ("_js_string", lambda text: json.dumps(text))),
        ("amounts through a float", ("js_number", lambda value: repr(float(value)))),
    ],
    ids=["key-order", "escaped-text", "float-amounts"],
)
def test_an_app_with_a_wrong_canonical_form_refuses_what_the_fake_signs(
    monkeypatch: pytest.MonkeyPatch, flaw: str, setting: tuple[str, Any]
) -> None:
    name, broken = setting
    body = signing.write(IPN)
    sent = signing.signature(body, SECRET)
    monkeypatch.setattr(payments_signature, name, broken)
    assert not payments_signature.verify(body, sent, SECRET), f"an app with {flaw} passed"
    # a fake signing with the app's own code would have agreed with the broken app
    assert payments_signature.verify(body, payments_signature.sign(
        json.loads(body, parse_float=Decimal), SECRET), SECRET)  # fmt: skip


@pytest.mark.parametrize(
    ("amount", "written"),
    [("1E-8", "1e-8"), ("0.00000123", "0.00000123"), ("-2.50E-7", "-2.5e-7"),
     ("1E+21", "1e+21"), ("1234567890123456789012", "1.234567890123456789012e+21"),
     ("100", "100"), ("100.000", "100"), ("0", "0")],
)  # fmt: skip
def test_amounts_are_written_as_javascript_writes_them(amount: str, written: str) -> None:
    assert signing.write([Decimal(amount)]) == f"[{written}]".encode()
    assert payments_signature.js_number(Decimal(amount)) == written  # the app agrees


@pytest.mark.parametrize(
    "value",
    [1.5, Decimal("NaN"), {"ключ": 1}, "\ud800", object()],
    ids=["float", "nan", "non-ascii-key", "lone-surrogate", "object"],
)
def test_the_fake_refuses_to_write_what_it_would_have_to_guess(value: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        signing.write({"value": value})
