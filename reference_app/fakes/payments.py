"""A NOWPayments-compatible payment provider, faked as its own aiohttp app.

Provider API (``x-api-key`` header required, else 401 ``INVALID_API_KEY``):

- ``GET /v1/status`` -> ``{"message": "OK"}`` (no key, as at NOWPayments).
- ``POST /v1/payment`` with ``price_amount`` (number or decimal string, > 0),
  ``price_currency``, ``pay_currency`` and optionally ``pay_amount``, ``order_id``,
  ``order_description``, ``ipn_callback_url`` -> 201 and the payment (below), in state
  ``waiting``. Other NOWPayments parameters are ignored.
- ``GET /v1/payment/{payment_id}`` -> the payment, or 404.

A payment is ``{"payment_id": int, "payment_status", "pay_address", "price_amount",
"price_currency", "pay_amount", "actually_paid", "pay_currency", "order_id",
"order_description", "ipn_callback_url", "purchase_id": str, "created_at", "updated_at"}``.
Ids count up from ``first_payment_id``; ``pay_address`` and ``purchase_id`` are hashes of
the id (and currency), so the same calls give the same values on every run. Real
NOWPayments returns ``payment_id`` as a string in the create answer and as a number
elsewhere; the fake always writes a number, so a client should accept both.

Amounts are JSON numbers, as NOWPayments writes them, but exact: the fake parses request
numbers as ``Decimal`` and writes every body with
:func:`~reference_app.payments_signature.canonical_body`, which prints a ``Decimal``'s own
digits the way JavaScript prints numbers (``3999.5``, ``0.00029``, ``1e-7``). Read them with
``json.loads(body, parse_float=Decimal)`` (whole amounts such as ``100`` come as ``int``).
``pay_amount`` is ``price_amount`` when the currencies are the same, else converted through
the fixed table :data:`CURRENCIES` (US dollars per unit) and rounded up to the pay
currency's decimals, so the payer never pays less than the price. Amounts take at most 18
decimal places and stay below 10**15. Errors have NOWPayments' shape:
``{"status": false, "statusCode": 400, "code": "INVALID_REQUEST_PARAMS", "message": ...}``.

IPN: each change of state POSTs the whole payment to its ``ipn_callback_url``, the body
being exactly ``canonical_body(payment)`` and ``x-nowpayments-sig`` its signature. A delivery
counts as delivered when the app answers 2xx; it is never retried by itself (use
``resend-ipn``) and redirects are not followed.

Control API, for tests and chaos (no key; never affected by the mode):

- ``POST /_control/payments/{id}/progress`` with ``{"status", "actually_paid"?, "through"?}``:
  sets the state (any state from any state, to allow out-of-order stories) and delivers
  the IPN before answering ``{"payment", "ipn": {"delivered", "status", "error"}, "steps":
  [{"payment_status", "ipn"}]}``. With ``"through": true`` the payment walks the happy path
  (waiting, confirming, confirmed, sending, finished) from its state, or from waiting if it
  is off that path, up to ``status``, one IPN per step; ``ipn`` is the last step's. Without
  ``actually_paid`` the amount paid stays, except that a payment entering confirming,
  confirmed, sending or finished with nothing paid gets ``pay_amount``.
- ``POST /_control/payments/{id}/resend-ipn``: sends the last IPN again, byte for byte
  (409 if none was sent yet); answers like ``progress`` without ``steps``.
- ``POST /_control/mode`` with ``{"mode", "status"?, "delay_ms"?}``, ``GET /_control/mode``:
  how the ``/v1`` endpoints behave (see :mod:`reference_app.fakes.misbehaviour`); ``GET``
  also says how many answers were given misbehaving so far (``misbehaved``).
  ``normal``; ``error``: answer ``status`` (400..599, default 503) with an error body, doing
  nothing; ``slow``: wait ``delay_ms`` (default 1000), then handle the request (it takes
  effect even if the client gave up); ``malformed``: handle the request (it takes effect),
  then answer 200 with the first half of the real body, which is not valid JSON.
- ``GET /_control/payments`` -> ``{"payments": [...]}``; ``GET /_control/ipn-log`` ->
  ``{"attempts": [{"payment_id", "payment_status", "url", "delivered", "status", "error"}],
  "delivering": n}``, one per delivery tried, and how many control requests are still
  delivering IPNs (a payment may be finished here before its last IPN is delivered);
  ``POST /_control/reset`` clears everything (ids start again) and sets the mode to normal.

Run standalone: ``python -m reference_app.fakes.payments --port N --api-key K --ipn-secret S``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_UP, Decimal, localcontext
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from reference_app.fakes.misbehaviour import (
    FAULT_MESSAGE,
    Behaviour,
    InvalidBehaviour,
    Tally,
    misbehaviour_middleware,
    parse_behaviour,
)
from reference_app.payments_signature import SIGNATURE_HEADER, canonical_body, sign


class PaymentStatus(StrEnum):
    """The states of a NOWPayments payment, with their names."""

    WAITING = "waiting"
    CONFIRMING = "confirming"
    CONFIRMED = "confirmed"
    SENDING = "sending"
    PARTIALLY_PAID = "partially_paid"
    FINISHED = "finished"
    FAILED = "failed"
    REFUNDED = "refunded"
    EXPIRED = "expired"


_STATUS_NAMES = frozenset(status.value for status in PaymentStatus)
#: the states a payment goes through when all is well
HAPPY_PATH = (
    PaymentStatus.WAITING,
    PaymentStatus.CONFIRMING,
    PaymentStatus.CONFIRMED,
    PaymentStatus.SENDING,
    PaymentStatus.FINISHED,
)
#: reaching one of these means the coins arrived: ``actually_paid`` defaults to ``pay_amount``
_PAID = frozenset(HAPPY_PATH[1:])


@dataclass(frozen=True)
class Currency:
    """A currency the fake knows: its fixed dollar value and, if it can be paid in, how."""

    usd_value: Decimal
    decimals: int
    #: None for fiat, which can price a payment but not pay it
    address_prefix: str | None = None
    address_length: int = 0


#: the fixed rates (US dollars per unit) that turn ``price_amount`` into ``pay_amount``
CURRENCIES: Mapping[str, Currency] = MappingProxyType(
    {
        "usd": Currency(Decimal("1"), 2),
        "eur": Currency(Decimal("1.08"), 2),
        "btc": Currency(Decimal("60000"), 8, "bc1q", 42),
        "eth": Currency(Decimal("3000"), 8, "0x", 42),
        "ltc": Currency(Decimal("80"), 8, "ltc1q", 43),
        "usdttrc20": Currency(Decimal("1"), 6, "T", 34),
    }
)
MAX_DECIMALS = 18
MAX_AMOUNT = Decimal(10) ** 15
DEFAULT_FIRST_PAYMENT_ID = 5_000_000_001
_AMOUNT_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_PAYMENT_ID = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class PaymentsFakeConfig:
    """What the fake needs: the key clients send, the secret it signs IPNs with."""

    api_key: str
    ipn_secret: str
    #: seconds the app has to answer one IPN
    ipn_timeout: float = 5.0
    first_payment_id: int = DEFAULT_FIRST_PAYMENT_ID


class ProviderError(Exception):
    """An answer in NOWPayments' error shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def to_json(self) -> dict[str, Any]:
        return {
            "status": False,
            "statusCode": self.status,
            "code": self.code,
            "message": self.message,
        }


def _invalid(message: str) -> ProviderError:
    return ProviderError(400, "INVALID_REQUEST_PARAMS", message)


@dataclass
class Payment:
    """One payment, as the provider sees it."""

    payment_id: int
    status: PaymentStatus
    pay_address: str
    price_amount: Decimal
    price_currency: str
    pay_amount: Decimal
    pay_currency: str
    actually_paid: Decimal
    order_id: str | None
    order_description: str | None
    ipn_callback_url: str | None
    purchase_id: str
    created_at: str
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "payment_id": self.payment_id,
            "payment_status": self.status,
            "pay_address": self.pay_address,
            "price_amount": self.price_amount,
            "price_currency": self.price_currency,
            "pay_amount": self.pay_amount,
            "actually_paid": self.actually_paid,
            "pay_currency": self.pay_currency,
            "order_id": self.order_id,
            "order_description": self.order_description,
            "ipn_callback_url": self.ipn_callback_url,
            "purchase_id": self.purchase_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class NewPayment:
    """A validated ``POST /v1/payment`` body."""

    price_amount: Decimal
    price_currency: str
    pay_currency: str
    pay_amount: Decimal | None
    order_id: str | None
    order_description: str | None
    ipn_callback_url: str | None


@dataclass(frozen=True)
class Ipn:
    """One notification: the exact bytes sent and their signature."""

    payment_id: int
    payment_status: PaymentStatus
    url: str | None
    body: bytes
    signature: str


@dataclass(frozen=True)
class IpnOutcome:
    """What became of one IPN: ``status`` is the app's HTTP answer, if any."""

    delivered: bool
    status: int | None
    error: str | None

    def to_json(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "status": self.status, "error": self.error}


@dataclass(frozen=True)
class IpnAttempt:
    ipn: Ipn
    outcome: IpnOutcome

    def to_json(self) -> dict[str, Any]:
        return {
            "payment_id": self.ipn.payment_id,
            "payment_status": self.ipn.payment_status,
            "url": self.ipn.url,
            **self.outcome.to_json(),
        }


class PaymentBook:
    """All the fake's state: payments, the IPNs sent, the current behaviour. No I/O."""

    def __init__(self, config: PaymentsFakeConfig) -> None:
        self.config = config
        self.behaviour = Behaviour()
        #: answers given while misbehaving, over the fake's life (never reset)
        self.misbehaved = Tally()
        self._payments: dict[int, Payment] = {}
        self._next_id = config.first_payment_id
        self._last_ipn: dict[int, Ipn] = {}
        self._attempts: list[IpnAttempt] = []
        self._locks: dict[int, asyncio.Lock] = {}
        #: control requests still delivering IPNs (or waiting to): the book is not final yet
        self.delivering = 0

    def create(self, new: NewPayment) -> Payment:
        payment_id = self._next_id
        self._next_id += 1
        now = _timestamp()
        payment = Payment(
            payment_id=payment_id,
            status=PaymentStatus.WAITING,
            pay_address=_pay_address(payment_id, new.pay_currency),
            price_amount=new.price_amount,
            price_currency=new.price_currency,
            pay_amount=new.pay_amount
            if new.pay_amount is not None
            else _convert(new.price_amount, new.price_currency, new.pay_currency),
            pay_currency=new.pay_currency,
            actually_paid=Decimal(0),
            order_id=new.order_id,
            order_description=new.order_description,
            ipn_callback_url=new.ipn_callback_url,
            purchase_id=_purchase_id(payment_id),
            created_at=now,
            updated_at=now,
        )
        self._payments[payment_id] = payment
        return payment

    def get(self, payment_id: int) -> Payment:
        try:
            return self._payments[payment_id]
        except KeyError:
            raise ProviderError(
                404, "PAYMENT_NOT_FOUND", f"payment {payment_id} not found"
            ) from None

    def all(self) -> list[Payment]:
        return [self._payments[key] for key in sorted(self._payments)]

    def move(self, payment_id: int, status: PaymentStatus, actually_paid: Decimal | None) -> Ipn:
        """Put the payment in ``status`` and return the IPN that tells so."""
        payment = self.get(payment_id)
        if actually_paid is not None:
            payment.actually_paid = actually_paid
        elif status in _PAID and not payment.actually_paid:
            payment.actually_paid = payment.pay_amount
        payment.status = status
        payment.updated_at = _timestamp()
        body = payment.to_json()
        ipn = Ipn(
            payment_id=payment_id,
            payment_status=status,
            url=payment.ipn_callback_url,
            body=canonical_body(body),
            signature=sign(body, self.config.ipn_secret),
        )
        self._last_ipn[payment_id] = ipn
        return ipn

    def last_ipn(self, payment_id: int) -> Ipn:
        self.get(payment_id)
        try:
            return self._last_ipn[payment_id]
        except KeyError:
            raise ProviderError(
                409, "NO_IPN_YET", f"no IPN was sent for payment {payment_id} yet"
            ) from None

    def record(self, attempt: IpnAttempt) -> None:
        self._attempts.append(attempt)

    def attempts(self) -> list[IpnAttempt]:
        return list(self._attempts)

    @contextlib.asynccontextmanager
    async def delivering_ipns(self, payment_id: int) -> AsyncIterator[None]:
        """Hold the lock that keeps one payment's changes and IPNs in order, counted in
        :attr:`delivering` from the moment it is asked for until it is given back."""
        self.delivering += 1
        try:
            async with self._locks.setdefault(payment_id, asyncio.Lock()):
                yield
        finally:
            self.delivering -= 1

    def reset(self) -> None:
        self._payments.clear()
        self._next_id = self.config.first_payment_id
        self._last_ipn.clear()
        self._attempts.clear()
        self._locks.clear()
        self.behaviour = Behaviour()


class IpnSender:
    """Delivers IPNs over the fake's own HTTP client session."""

    def __init__(self, session: aiohttp.ClientSession, timeout: float) -> None:
        self._session = session
        self._timeout = timeout

    async def deliver(self, ipn: Ipn, url: str) -> IpnOutcome:
        headers = {SIGNATURE_HEADER: ipn.signature, "Content-Type": "application/json"}
        try:
            async with self._session.post(
                url, data=ipn.body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                answer = await response.text() if not 200 <= status < 300 else ""
        except TimeoutError:
            return IpnOutcome(False, None, f"no answer within {self._timeout:g}s")
        except (aiohttp.ClientError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return IpnOutcome(False, None, reason)
        if 200 <= status < 300:
            return IpnOutcome(True, status, None)
        return IpnOutcome(False, status, f"the app answered HTTP {status}{_named(answer)}")


def _named(answer: str) -> str:
    """`` (service: code)`` from an answer in the app's error shape, else nothing."""
    try:
        error = json.loads(answer).get("error")
        return f" ({error['service']}: {error['code']})"
    except (ValueError, AttributeError, TypeError, KeyError):
        return ""


PAYMENT_BOOK = web.AppKey("payment_book", PaymentBook)
IPN_SENDER = web.AppKey("ipn_sender", IpnSender)


def create_payments_app(config: PaymentsFakeConfig) -> web.Application:
    """The fake provider: its routes, its state and its IPN client session."""
    middleware = misbehaviour_middleware(
        _behaviour_of,
        ProviderError,
        _error_response,
        _fault,
        lambda r: r.app[PAYMENT_BOOK].misbehaved,
    )
    app = web.Application(middlewares=[middleware])
    app[PAYMENT_BOOK] = PaymentBook(config)
    app.cleanup_ctx.append(_ipn_session)
    app.router.add_get("/v1/status", _api_status)
    app.router.add_post("/v1/payment", _create_payment)
    app.router.add_get("/v1/payment/{payment_id}", _get_payment)
    app.router.add_post("/_control/payments/{payment_id}/progress", _progress)
    app.router.add_post("/_control/payments/{payment_id}/resend-ipn", _resend_ipn)
    app.router.add_get("/_control/payments", _list_payments)
    app.router.add_get("/_control/ipn-log", _ipn_log)
    app.router.add_get("/_control/mode", _get_mode)
    app.router.add_post("/_control/mode", _set_mode)
    app.router.add_post("/_control/reset", _reset)
    return app


async def _ipn_session(app: web.Application) -> AsyncIterator[None]:
    timeout = app[PAYMENT_BOOK].config.ipn_timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        app[IPN_SENDER] = IpnSender(session, timeout)
        yield


async def _api_status(request: web.Request) -> web.Response:
    return _json_response({"message": "OK"})


async def _create_payment(request: web.Request) -> web.Response:
    book = request.app[PAYMENT_BOOK]
    _check_api_key(request, book.config.api_key)
    new = _parse_new_payment(await _json_object(request))
    return _json_response(book.create(new).to_json(), status=201)


async def _get_payment(request: web.Request) -> web.Response:
    book = request.app[PAYMENT_BOOK]
    _check_api_key(request, book.config.api_key)
    return _json_response(book.get(_payment_id(request)).to_json())


async def _progress(request: web.Request) -> web.Response:
    book = request.app[PAYMENT_BOOK]
    payment_id = _payment_id(request)
    book.get(payment_id)
    body = await _json_object(request)
    target = _parse_status(body.get("status"))
    actually_paid = None
    if body.get("actually_paid") is not None:
        actually_paid = _parse_amount(body["actually_paid"], "actually_paid", allow_zero=True)
    through = body.get("through", False)
    if not isinstance(through, bool):
        raise _invalid('"through" must be true or false')
    steps: list[dict[str, Any]] = []
    async with book.delivering_ipns(payment_id):
        current = book.get(payment_id).status
        for status in _walk(current, target) if through else [target]:
            outcome = await _send(request.app, book.move(payment_id, status, actually_paid))
            steps.append({"payment_status": status, "ipn": outcome.to_json()})
    return _json_response(
        {"payment": book.get(payment_id).to_json(), "ipn": steps[-1]["ipn"], "steps": steps}
    )


async def _resend_ipn(request: web.Request) -> web.Response:
    book = request.app[PAYMENT_BOOK]
    payment_id = _payment_id(request)
    book.get(payment_id)
    async with book.delivering_ipns(payment_id):
        outcome = await _send(request.app, book.last_ipn(payment_id))
    return _json_response({"payment": book.get(payment_id).to_json(), "ipn": outcome.to_json()})


async def _list_payments(request: web.Request) -> web.Response:
    payments = request.app[PAYMENT_BOOK].all()
    return _json_response({"payments": [payment.to_json() for payment in payments]})


async def _ipn_log(request: web.Request) -> web.Response:
    book = request.app[PAYMENT_BOOK]
    attempts = [attempt.to_json() for attempt in book.attempts()]
    return _json_response({"attempts": attempts, "delivering": book.delivering})


async def _get_mode(request: web.Request) -> web.Response:
    book = request.app[PAYMENT_BOOK]
    return _json_response({**book.behaviour.to_json(), "misbehaved": book.misbehaved.count})


async def _set_mode(request: web.Request) -> web.Response:
    book = request.app[PAYMENT_BOOK]
    body = await _json_object(request)
    try:
        book.behaviour = parse_behaviour(body)
    except InvalidBehaviour as exc:
        raise _invalid(str(exc)) from None
    return _json_response(book.behaviour.to_json())


async def _reset(request: web.Request) -> web.Response:
    request.app[PAYMENT_BOOK].reset()
    return _json_response({"reset": True})


async def _send(app: web.Application, ipn: Ipn) -> IpnOutcome:
    """Deliver ``ipn`` and log the attempt; a payment without callback URL gets none."""
    if ipn.url is None:
        return IpnOutcome(False, None, "the payment has no ipn_callback_url")
    outcome = await app[IPN_SENDER].deliver(ipn, ipn.url)
    app[PAYMENT_BOOK].record(IpnAttempt(ipn, outcome))
    return outcome


def _walk(current: PaymentStatus, target: PaymentStatus) -> list[PaymentStatus]:
    if target not in HAPPY_PATH[1:]:
        path = ", ".join(HAPPY_PATH[1:])
        raise _invalid(f'"through" needs a status on the happy path ({path}), not {target}')
    start = HAPPY_PATH.index(current) if current in HAPPY_PATH else 0
    end = HAPPY_PATH.index(target)
    if start >= end:
        raise ProviderError(
            409, "INVALID_TRANSITION", f"payment is {current}: already at or past {target}"
        )
    return list(HAPPY_PATH[start + 1 : end + 1])


def _check_api_key(request: web.Request, api_key: str) -> None:
    given = request.headers.get("x-api-key", "")
    if not hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), api_key.encode("utf-8", "surrogatepass")
    ):
        raise ProviderError(401, "INVALID_API_KEY", "Invalid api key")


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(
            await request.read(), parse_float=Decimal, parse_constant=_refuse_constant
        )
    except (ValueError, RecursionError):
        raise _invalid("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise _invalid("the body must be a JSON object")
    return body


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _payment_id(request: web.Request) -> int:
    text = request.match_info["payment_id"]
    if not _PAYMENT_ID.fullmatch(text):
        raise _invalid(f"payment_id must be a number, not {text!r}")
    return int(text)


def _parse_new_payment(body: Mapping[str, Any]) -> NewPayment:
    price_currency = _parse_currency(body.get("price_currency"), "price_currency")
    pay_currency = _parse_currency(body.get("pay_currency"), "pay_currency")
    if CURRENCIES[pay_currency].address_prefix is None:
        raise _invalid(f'"pay_currency" must be a crypto currency, not {pay_currency}')
    pay_amount = None
    if body.get("pay_amount") is not None:
        pay_amount = _parse_amount(body["pay_amount"], "pay_amount")
    return NewPayment(
        price_amount=_parse_amount(body.get("price_amount"), "price_amount"),
        price_currency=price_currency,
        pay_currency=pay_currency,
        pay_amount=pay_amount,
        order_id=_optional_text(body, "order_id"),
        order_description=_optional_text(body, "order_description"),
        ipn_callback_url=_parse_callback_url(body.get("ipn_callback_url")),
    )


def _parse_amount(value: object, name: str, *, allow_zero: bool = False) -> Decimal:
    """A non-negative exact amount from a JSON number or a decimal string."""
    if value is None:
        raise _invalid(f'"{name}" is required')
    if isinstance(value, str) and _AMOUNT_TEXT.fullmatch(value.strip()):
        value = Decimal(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise _invalid(f'"{name}" must be a number')
    amount = Decimal(value)
    if amount < 0 or (amount == 0 and not allow_zero):
        raise _invalid(f'"{name}" must be {"at least 0" if allow_zero else "greater than 0"}')
    if amount >= MAX_AMOUNT:
        raise _invalid(f'"{name}" must be less than {MAX_AMOUNT:f}')
    if _decimal_places(amount) > MAX_DECIMALS:
        raise _invalid(f'"{name}" takes at most {MAX_DECIMALS} decimal places')
    return amount


def _decimal_places(amount: Decimal) -> int:
    if amount.is_zero():
        return 0
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing_zeros))


def _parse_currency(value: object, name: str) -> str:
    if value is None:
        raise _invalid(f'"{name}" is required')
    code = value.strip().lower() if isinstance(value, str) else ""
    if code not in CURRENCIES:
        known = ", ".join(CURRENCIES)
        raise _invalid(f'"{name}" must be one of {known}, not {value!r}')
    return code


def _parse_status(value: object) -> PaymentStatus:
    if isinstance(value, str) and value in _STATUS_NAMES:
        return PaymentStatus(value)
    known = ", ".join(PaymentStatus)
    raise _invalid(f'"status" must be one of {known}, not {value!r}')


def _optional_text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise _invalid(f'"{name}" must be a string')
    return value


def _parse_callback_url(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            url = URL(value)
        except ValueError:
            url = None
        if url is not None and url.scheme in ("http", "https") and url.host:
            return value
    raise _invalid('"ipn_callback_url" must be an http or https URL')


def _convert(amount: Decimal, source: str, target: str) -> Decimal:
    """``amount`` of ``source`` in ``target``, rounded up to ``target``'s decimals."""
    if source == target:
        return amount
    with localcontext() as context:
        # wide enough that no digit that matters is rounded before the quantize
        context.prec = 60
        exact = amount * CURRENCIES[source].usd_value / CURRENCIES[target].usd_value
        return exact.quantize(Decimal(1).scaleb(-CURRENCIES[target].decimals), ROUND_UP)


def _pay_address(payment_id: int, currency: str) -> str:
    spec = CURRENCIES[currency]
    assert spec.address_prefix is not None
    digest = hashlib.sha256(f"address:{currency}:{payment_id}".encode()).hexdigest()
    return spec.address_prefix + digest[: spec.address_length - len(spec.address_prefix)]


def _purchase_id(payment_id: int) -> str:
    digest = hashlib.sha256(f"purchase:{payment_id}".encode()).digest()
    return str(1_000_000_000 + int.from_bytes(digest[:8], "big") % 9_000_000_000)


def _timestamp() -> str:
    """Now, as NOWPayments writes times: ``2020-12-22T15:00:22.742Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_response(data: Mapping[str, Any], status: int = 200) -> web.Response:
    return web.Response(status=status, body=canonical_body(data), content_type="application/json")


def _error_response(error: ProviderError) -> web.Response:
    return _json_response(error.to_json(), status=error.status)


def _behaviour_of(request: web.Request) -> Behaviour:
    return request.app[PAYMENT_BOOK].behaviour


def _fault(status: int) -> ProviderError:
    return ProviderError(status, "INJECTED_FAULT", FAULT_MESSAGE)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake provider on its own."""
    parser = argparse.ArgumentParser(
        prog="python -m reference_app.fakes.payments",
        description="A NOWPayments-compatible payment provider fake.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--api-key", required=True, help="the x-api-key clients must send")
    parser.add_argument("--ipn-secret", required=True, help="the secret IPNs are signed with")
    parser.add_argument("--ipn-timeout", type=float, default=5.0, help="seconds per IPN")
    parser.add_argument("--first-payment-id", type=int, default=DEFAULT_FIRST_PAYMENT_ID)
    args = parser.parse_args(argv)
    config = PaymentsFakeConfig(
        api_key=args.api_key,
        ipn_secret=args.ipn_secret,
        ipn_timeout=args.ipn_timeout,
        first_payment_id=args.first_payment_id,
    )
    web.run_app(create_payments_app(config), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
