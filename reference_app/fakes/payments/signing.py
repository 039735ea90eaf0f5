"""How the fake writes its JSON and signs its IPNs: its own code, not the app's.

The fake is the witness that the app verifies IPN signatures right. Signing with the app's
own code (``reference_app/payments_signature.py``) would make a bug there invisible: both
sides would agree on the same wrong bytes. So the fake follows NOWPayments' documentation
by itself, as the provider's Node server does it: the body is ``JSON.stringify`` of the
object with its keys sorted, and the ``x-nowpayments-sig`` header is the hex HMAC-SHA512
of those bytes keyed with the IPN secret.

The fake writes only what its own bodies hold: objects with ASCII keys (sorted as
JavaScript's default ``sort`` orders them, which for ASCII is byte order), lists, strings,
integers, booleans, null, and :class:`~decimal.Decimal` amounts, written with their exact
digits as JavaScript writes a number (``3999.5``, ``0.00029``, ``1e-8``). Anything else is
refused, not guessed: a float (whose digits the fake never had), a key outside ASCII.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

#: the header NOWPayments signs its IPNs in
SIGNATURE_HEADER = "x-nowpayments-sig"
#: JavaScript writes numbers at or above this in exponent form
_EXPONENT_FROM = Decimal("1e21")
#: ... and numbers below this one too
_PLAIN_DOWN_TO = Decimal("1e-6")


def write(value: Any) -> bytes:
    """``value`` as the fake sends it: compact JSON, keys sorted, UTF-8."""
    return _text(value).encode("utf-8")


def signature(body: bytes, secret: str) -> str:
    """The ``x-nowpayments-sig`` header for ``body``, the exact bytes sent."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha512).hexdigest()


def _text(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return _amount(value)
    if isinstance(value, str):
        if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            raise ValueError("the fake writes no lone surrogate")
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) and k.isascii() for k in value):
            raise ValueError(f"the fake writes ASCII keys only, not {sorted(map(repr, value))}")
        items = sorted(value.items())
        return "{" + ",".join(f"{json.dumps(k)}:{_text(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_text(item) for item in value) + "]"
    raise TypeError(f"the fake does not write a {type(value).__name__}")


def _amount(value: Decimal) -> str:
    """A decimal amount as JavaScript writes a number: its exact digits, no trailing zeros;
    plain from 1e-6 up to 1e21, else in exponent form (``1e-8``, ``1.5e+21``)."""
    if not value.is_finite():
        raise ValueError(f"{value} is not an amount")
    if value == 0:
        return "0"
    if _PLAIN_DOWN_TO <= abs(value) < _EXPONENT_FROM:
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    reduced = value.normalize()
    digits = "".join(str(d) for d in reduced.as_tuple().digits)
    mantissa = digits[0] + (f".{digits[1:]}" if len(digits) > 1 else "")
    power = reduced.adjusted()
    sign = "-" if value < 0 else ""
    return f"{sign}{mantissa}e{'+' if power > 0 else '-'}{abs(power)}"
