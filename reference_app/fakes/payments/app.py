"""The fake provider's application: its API and its control routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from isolation_harness.reference_app.fakes.control import FakeError, fake_app, parse_behaviour
from isolation_harness.reference_app.fakes.payments.book import (
    HAPPY_PATH,
    Ipn,
    IpnAttempt,
    IpnOutcome,
    PaymentBook,
    PaymentsFakeConfig,
    PaymentStatus,
)
from isolation_harness.reference_app.fakes.payments.dialect import DIALECT, invalid
from isolation_harness.reference_app.fakes.payments.ipn import IpnSender
from isolation_harness.reference_app.fakes.payments.parsing import (
    check_api_key,
    parse_amount,
    parse_new_payment,
    parse_status,
    requested_payment_id,
)

PAYMENT_BOOK = web.AppKey("payment_book", PaymentBook)
IPN_SENDER = web.AppKey("ipn_sender", IpnSender)


def create_payments_app(config: PaymentsFakeConfig) -> web.Application:
    """The fake provider: its routes, its state and its IPN client session."""
    app = fake_app(PAYMENT_BOOK, PaymentBook(config), DIALECT, parse_behaviour)
    app.cleanup_ctx.append(_ipn_session)
    app.router.add_get("/v1/status", _api_status)
    app.router.add_post("/v1/payment", _create_payment)
    app.router.add_get("/v1/payment/{payment_id}", _get_payment)
    app.router.add_post("/_control/payments/{payment_id}/progress", _progress)
    app.router.add_post("/_control/payments/{payment_id}/resend-ipn", _resend_ipn)
    app.router.add_get("/_control/payments", _list_payments)
    app.router.add_get("/_control/ipn-log", _ipn_log)
    return app


async def _ipn_session(app: web.Application) -> AsyncIterator[None]:
    timeout = app[PAYMENT_BOOK].config.ipn_timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        app[IPN_SENDER] = IpnSender(session, timeout)
        yield


async def _api_status(request: web.Request) -> web.Response:
    return DIALECT.respond({"message": "OK"})


async def _create_payment(request: web.Request) -> web.Response:
    book = request.app[PAYMENT_BOOK]
    check_api_key(request, book.config.api_key)
    new = parse_new_payment(await DIALECT.json_object(request))
    return DIALECT.respond(book.create(new).to_json(), status=201)


async def _get_payment(request: web.Request) -> web.Response:
    book = request.app[PAYMENT_BOOK]
    check_api_key(request, book.config.api_key)
    return DIALECT.respond(book.get(requested_payment_id(request)).to_json())


async def _progress(request: web.Request) -> web.Response:
    book = request.app[PAYMENT_BOOK]
    payment_id = requested_payment_id(request)
    book.get(payment_id)
    body = await DIALECT.json_object(request)
    target = parse_status(body.get("status"))
    actually_paid = None
    if body.get("actually_paid") is not None:
        actually_paid = parse_amount(body["actually_paid"], "actually_paid", allow_zero=True)
    through = body.get("through", False)
    if not isinstance(through, bool):
        raise invalid('"through" must be true or false')
    steps: list[dict[str, Any]] = []
    async with book.delivering_ipns(payment_id):
        current = book.get(payment_id).status
        for status in _walk(current, target) if through else [target]:
            outcome = await _send(request.app, book.move(payment_id, status, actually_paid))
            steps.append({"payment_status": status, "ipn": outcome.to_json()})
    return DIALECT.respond(
        {"payment": book.get(payment_id).to_json(), "ipn": steps[-1]["ipn"], "steps": steps}
    )


async def _resend_ipn(request: web.Request) -> web.Response:
    book = request.app[PAYMENT_BOOK]
    payment_id = requested_payment_id(request)
    book.get(payment_id)
    async with book.delivering_ipns(payment_id):
        outcome = await _send(request.app, book.last_ipn(payment_id))
    return DIALECT.respond({"payment": book.get(payment_id).to_json(), "ipn": outcome.to_json()})


async def _list_payments(request: web.Request) -> web.Response:
    payments = request.app[PAYMENT_BOOK].all()
    return DIALECT.respond({"payments": [payment.to_json() for payment in payments]})


async def _ipn_log(request: web.Request) -> web.Response:
    book = request.app[PAYMENT_BOOK]
    attempts = [attempt.to_json() for attempt in book.attempts()]
    return DIALECT.respond({"attempts": attempts, "delivering": book.delivering})


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
        raise invalid(f'"through" needs a status on the happy path ({path}), not {target}')
    start = HAPPY_PATH.index(current) if current in HAPPY_PATH else 0
    end = HAPPY_PATH.index(target)
    if start >= end:
        raise FakeError(
            409, "INVALID_TRANSITION", f"payment is {current}: already at or past {target}"
        )
    return list(HAPPY_PATH[start + 1 : end + 1])
