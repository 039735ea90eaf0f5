"""The NOWPayments IPN signature: canonical body, signing, verifying."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal
from typing import Any

import pytest

from isolation_harness.reference_app.payments_signature import (
    canonical_body,
    js_number,
    sign,
    verify,
)

SECRET = "ipn-secret"


def hmac_sha512(message: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha512).hexdigest()


def test_a_known_vector() -> None:
    payload = {
        "payment_status": "finished",
        "payment_id": 5077125051,
        "pay_amount": Decimal("0.00029"),
        "actually_paid": Decimal("0"),
        "order_id": None,
        "price_amount": Decimal("25.50"),
    }
    text = (
        b'{"actually_paid":0,"order_id":null,"pay_amount":0.00029,"payment_id":5077125051,'
        b'"payment_status":"finished","price_amount":25.5}'
    )
    assert canonical_body(payload) == text
    assert sign(payload, SECRET) == hmac_sha512(text)
    assert verify(text, hmac_sha512(text), SECRET)


def test_the_signature_does_not_depend_on_key_order() -> None:
    forward = {"a": 1, "b": {"x": 1, "y": [1, 2]}, "c": "z"}
    backward = {"c": "z", "b": {"y": [1, 2], "x": 1}, "a": 1}
    assert sign(forward, SECRET) == sign(backward, SECRET)


def test_nested_objects_are_sorted_and_arrays_keep_their_order() -> None:
    payload = {"z": {"b": 1, "a": [{"d": 1, "c": 2}, 3, None]}, "fee": {"currency": "btc"}}
    assert (
        canonical_body(payload)
        == b'{"fee":{"currency":"btc"},"z":{"a":[{"c":2,"d":1},3,null],"b":1}}'
    )


def test_keys_sort_as_javascript_sorts_them() -> None:
    # array-index keys first, by value; then UTF-16 code units (U+1F600 is D83D DE00)
    payload = {"b": 1, "\uff61": 2, "\U0001f600": 3, "10": 4, "9": 5, "01": 6, "A": 7}
    order = list(json.loads(canonical_body(payload)))
    assert order == ["9", "10", "01", "A", "b", "\U0001f600", "\uff61"]


def test_strings_are_written_as_json_stringify_writes_them() -> None:
    payload = {"s": 'é/"\\\n\t\x01\x7f\u2028\ud800'}
    assert canonical_body(payload) == '{"s":"é/\\"\\\\\\n\\t\\u0001\x7f\u2028\\ud800"}'.encode()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("3999.50"), "3999.5"),
        (Decimal("0.00029"), "0.00029"),
        (Decimal("100"), "100"),
        (Decimal("1E+2"), "100"),
        (Decimal("0.000001"), "0.000001"),
        (Decimal("0.0000001"), "1e-7"),
        (Decimal("0.00000123"), "0.00000123"),
        (Decimal("0.000000123"), "1.23e-7"),
        (Decimal("-0.5"), "-0.5"),
        (Decimal("-0"), "0"),
        (Decimal("0E-8"), "0"),
        (Decimal("1e21"), "1e+21"),
        # JavaScript would round these two; the exact digits are kept
        (Decimal("123456789012345678901"), "123456789012345678901"),
        (Decimal("0.123456789012345678"), "0.123456789012345678"),
    ],
)
def test_numbers_are_written_as_javascript_writes_them_but_exactly(
    value: Decimal, text: str
) -> None:
    assert js_number(value) == text
    assert canonical_body({"n": value}) == f'{{"n":{text}}}'.encode()


def test_floats_and_ints_are_written_as_javascript_writes_them() -> None:
    assert canonical_body({"f": 0.1, "g": 1e-7, "h": 2.0, "i": 10**16, "t": True}) == (
        b'{"f":0.1,"g":1e-7,"h":2,"i":10000000000000000,"t":true}'
    )


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), float("inf")])
def test_non_finite_numbers_cannot_be_signed(value: Any) -> None:
    with pytest.raises(ValueError, match="finite"):
        canonical_body({"n": value})


@pytest.mark.parametrize("payload", [{"n": {1: "x"}}, {"n": {1, 2}}, {"n": b"x"}])
def test_values_json_cannot_hold_cannot_be_signed(payload: Any) -> None:
    with pytest.raises(TypeError):
        canonical_body(payload)


def test_verify_accepts_any_key_order_and_whitespace() -> None:
    payload = {"payment_id": 1, "payment_status": "finished", "nested": {"b": 2, "a": 1}}
    signature = sign(payload, SECRET)
    loose = json.dumps(
        {"payment_status": "finished", "nested": {"a": 1, "b": 2}, "payment_id": 1}, indent=2
    )
    assert verify(loose.encode(), signature, SECRET)


def test_verify_reads_numbers_exactly() -> None:
    # a sender writing 1.50 or 1E-7 signs what JSON.stringify gives after parsing: 1.5, 1e-7
    signature = hmac_sha512(b'{"a":1.5,"b":1e-7,"c":0.123456789012345678}')
    assert verify(b'{"c":0.123456789012345678,"b":1E-7,"a":1.50}', signature, SECRET)
    assert not verify(b'{"c":0.123456789012345679,"b":1E-7,"a":1.50}', signature, SECRET)


def test_verify_refuses_a_wrong_secret_or_a_changed_body() -> None:
    payload = {"payment_id": 1, "actually_paid": Decimal("0.5")}
    body, signature = canonical_body(payload), sign(payload, SECRET)
    assert verify(body, signature, SECRET)
    assert not verify(body, signature, "other-secret")
    assert not verify(body.replace(b"0.5", b"0.6"), signature, SECRET)
    assert not verify(body, signature.upper(), SECRET)
    assert not verify(body, signature[:-1], SECRET)


VALID_BODY = b'{"a":1}'


@pytest.mark.parametrize(
    ("raw_body", "signature"),
    [
        (VALID_BODY, None),
        (VALID_BODY, ""),
        (VALID_BODY, "not-hex"),
        (VALID_BODY, "é" * 128),
        (b"", hmac_sha512(b"")),
        (b"not json", hmac_sha512(b"not json")),
        (b"[1,2]", hmac_sha512(b"[1,2]")),
        (b'"text"', hmac_sha512(b'"text"')),
        (b"null", hmac_sha512(b"null")),
        (b'{"a":NaN}', hmac_sha512(b'{"a":NaN}')),
        (b'{"a":Infinity}', hmac_sha512(b'{"a":Infinity}')),
        (b'{"a":"\xff"}', hmac_sha512(b'{"a":"\xff"}')),
        (b'{"a":1', hmac_sha512(b'{"a":1')),
        (b"[" * 100_000 + b"]" * 100_000, "00"),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "00"),
    ],
)
def test_verify_says_false_to_anything_malformed(raw_body: bytes, signature: str | None) -> None:
    assert verify(raw_body, signature, SECRET) is False
