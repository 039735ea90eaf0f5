"""The NOWPayments IPN signature, shared by the provider fake (signs) and the app (verifies).

NOWPayments documents the scheme as: parse the callback body, sort it by keys, serialise it
with ``JSON.stringify`` (their Node example sorts nested objects too), take the HMAC-SHA512
of that text keyed with the IPN secret, and compare the hex digest with the
``x-nowpayments-sig`` header. In Python that text is what :func:`canonical_body` produces:

- keys sorted at every depth as the documented Node code (``sortObject`` then
  ``JSON.stringify``) orders them: array-index keys (``"7"``, ``"10"``) first in numeric
  order, since JavaScript objects enumerate those first, then the others by UTF-16 code
  units as ``Array.prototype.sort`` compares them (it differs from code point order only
  between astral and U+E000..U+FFFF characters);
- no whitespace (``","`` and ``":"``), non-ASCII characters raw, in UTF-8 (``ensure_ascii``
  would be wrong: ``JSON.stringify`` does not escape them), ``/`` not escaped, control
  characters and lone surrogates escaped as ``JSON.stringify`` does;
- numbers written as JavaScript writes them (``3999.5``, ``0.00029``, ``100``, ``1e-7``), but
  from the exact decimal value: a :class:`~decimal.Decimal` is never rounded through a float
  (so ``0.123456789012345678`` keeps all its digits, where JavaScript would round it), and
  integers keep all their digits.

:func:`verify` re-canonicalises the received body, as the documented check does, so the
signature holds whatever the sender's key order and whitespace; numbers are parsed as
``Decimal`` so re-canonicalising never changes their value.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

#: the HTTP header that carries the signature of an IPN
SIGNATURE_HEADER = "x-nowpayments-sig"

_SURROGATE = re.compile("[\ud800-\udfff]")
_ARRAY_INDEX = re.compile("0|[1-9][0-9]{0,9}")
_MAX_ARRAY_INDEX = 2**32 - 2


def canonical_body(payload: Mapping[str, Any]) -> bytes:
    """The bytes NOWPayments signs for ``payload``: sorted keys, compact JSON, UTF-8.

    Values may be mappings with ``str`` keys, lists or tuples, ``str``, ``bool``, ``None``,
    ``int``, ``Decimal`` or ``float``. Raises ``TypeError`` for anything else and
    ``ValueError`` for a non-finite number.
    """
    parts: list[str] = []
    _encode(payload, parts)
    return "".join(parts).encode("utf-8")


def sign(payload: Mapping[str, Any], secret: str) -> str:
    """The ``x-nowpayments-sig`` value for ``payload``: hex HMAC-SHA512 of its canonical body."""
    return _digest(canonical_body(payload), secret)


def verify(raw_body: bytes, signature: str | None, secret: str) -> bool:
    """Whether ``signature`` signs the JSON object in ``raw_body``; never raises.

    The body is parsed (numbers as ``Decimal``) and re-canonicalised; a body that is not
    UTF-8, not JSON, not an object, or holds ``NaN``/``Infinity``, and a missing or empty
    signature all give ``False``. The comparison takes constant time.
    """
    if not signature or not signature.isascii():
        return False
    try:
        payload = json.loads(
            raw_body.decode("utf-8"), parse_float=Decimal, parse_constant=_refuse_constant
        )
        if not isinstance(payload, dict):
            return False
        expected = _digest(canonical_body(payload), secret)
    except (ValueError, TypeError, RecursionError):
        # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return False
    return hmac.compare_digest(expected, signature)


def _digest(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha512).hexdigest()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _encode(value: Any, parts: list[str]) -> None:
    if isinstance(value, str):
        parts.append(_js_string(value))
    elif value is None:
        parts.append("null")
    elif isinstance(value, bool):  # before int: bool is an int
        parts.append("true" if value else "false")
    elif isinstance(value, int):
        parts.append(str(value))
    elif isinstance(value, Decimal):
        parts.append(js_number(value))
    elif isinstance(value, float):
        # repr is the shortest text that round-trips, as in JavaScript
        parts.append(js_number(Decimal(repr(value))))
    elif isinstance(value, Mapping):
        parts.append("{")
        for index, key in enumerate(sorted(value, key=_js_sort_key)):
            if index:
                parts.append(",")
            parts.append(_js_string(key))
            parts.append(":")
            _encode(value[key], parts)
        parts.append("}")
    elif isinstance(value, list | tuple):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _encode(item, parts)
        parts.append("]")
    else:
        raise TypeError(f"cannot sign a {type(value).__name__}")


def _js_sort_key(key: object) -> tuple[int, bytes]:
    if not isinstance(key, str):
        raise TypeError(f"object keys must be strings, not {type(key).__name__}")
    if _ARRAY_INDEX.fullmatch(key) and int(key) <= _MAX_ARRAY_INDEX:
        return (0, int(key).to_bytes(4, "big"))
    return (1, key.encode("utf-16-be", "surrogatepass"))


def _js_string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    return _SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", encoded)


def js_number(value: Decimal) -> str:
    """``value`` written as JavaScript's ``Number.prototype.toString`` would, digit for digit.

    The digits are the exact ones of ``value`` (trailing zeros dropped), so the result equals
    JavaScript's whenever ``value`` is exactly representable with 17 significant digits.
    """
    if not value.is_finite():
        raise ValueError(f"{value} is not a finite number")
    if value.is_zero():
        return "0"  # JavaScript writes -0 as 0 too
    sign, digit_tuple, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    # value = 0.<digits> x 10**point, in the terms of ECMA-262 Number::toString
    count = len(digits)
    point = exponent + count
    if count <= point <= 21:
        text = digits + "0" * (point - count)
    elif 0 < point <= 21:
        text = f"{digits[:point]}.{digits[point:]}"
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        mantissa = digits if count == 1 else f"{digits[0]}.{digits[1:]}"
        power = point - 1
        text = f"{mantissa}e{'+' if power >= 0 else '-'}{abs(power)}"
    return "-" + text if sign else text
