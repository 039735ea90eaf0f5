"""The NOWPayments fake over real HTTP: provider API, IPN delivery, control API."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from isolation_harness.chaos.invariants.facts import provider_book
from isolation_harness.reference_app.fakes.payments import (
    HAPPY_PATH,
    PaymentsFakeConfig,
    PaymentStatus,
    create_payments_app,
)
from isolation_harness.reference_app.payments_signature import (
    SIGNATURE_HEADER,
    canonical_body,
    verify,
)
from isolation_harness.topology.ports import free_port

API_KEY = "test-api-key"
IPN_SECRET = "test-ipn-secret"
CONFIG = PaymentsFakeConfig(api_key=API_KEY, ipn_secret=IPN_SECRET)
FIRST_ID = 5_000_000_001


def exact(raw: bytes) -> Any:
    """A JSON body with its numbers as the app should read them: exactly."""
    return json.loads(raw, parse_float=Decimal)


@dataclass
class Answer:
    status: int
    raw: bytes

    @property
    def body(self) -> Any:
        return exact(self.raw)


@dataclass
class FakeClient:
    """The fake's server and an HTTP session to talk to it."""

    server: TestServer
    session: aiohttp.ClientSession

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        data: str | None = None,
        api_key: str | None = API_KEY,
    ) -> Answer:
        headers = {} if api_key is None else {"x-api-key": api_key}
        if body is not None:
            data = json.dumps(body)
        if data is not None:
            headers["Content-Type"] = "application/json"
        async with self.session.request(
            method, self.server.make_url(path), data=data, headers=headers
        ) as response:
            return Answer(response.status, await response.read())

    async def create(self, **fields: Any) -> dict[str, Any]:
        body = {"price_amount": "100", "price_currency": "usd", "pay_currency": "btc"} | fields
        answer = await self.call("POST", "/v1/payment", body=body)
        assert answer.status == 201, answer.raw
        payment: dict[str, Any] = answer.body
        return payment

    async def get(self, payment_id: int) -> Answer:
        return await self.call("GET", f"/v1/payment/{payment_id}")

    async def progress(self, payment_id: int, **body: Any) -> Answer:
        return await self.call("POST", f"/_control/payments/{payment_id}/progress", body=body)

    async def control(self, method: str, path: str, **body: Any) -> Answer:
        return await self.call(method, f"/_control/{path}", body=body if body else None)


@dataclass
class ReceivedIpn:
    raw: bytes
    signature: str | None
    content_type: str

    @property
    def body(self) -> Any:
        return exact(self.raw)


@dataclass
class Receiver:
    """Stands for the app: records every IPN and answers ``answer_status``."""

    server: TestServer
    received: list[ReceivedIpn] = field(default_factory=list)
    answer_status: int = 200
    #: when set, each IPN waits for it before being answered
    hold: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return str(self.server.make_url("/ipn"))


StartFake = Callable[[PaymentsFakeConfig], Awaitable[FakeClient]]


@pytest.fixture
async def start_fake() -> AsyncIterator[StartFake]:
    servers: list[TestServer] = []
    async with aiohttp.ClientSession() as session:

        async def start(config: PaymentsFakeConfig) -> FakeClient:
            server = TestServer(create_payments_app(config))
            await server.start_server()
            servers.append(server)
            return FakeClient(server, session)

        try:
            yield start
        finally:
            for server in servers:
                await server.close()


@pytest.fixture
async def fake(start_fake: StartFake) -> FakeClient:
    return await start_fake(CONFIG)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    app = web.Application()
    server = TestServer(app)
    state = Receiver(server)

    async def record(request: web.Request) -> web.Response:
        state.received.append(
            ReceivedIpn(
                raw=await request.read(),
                signature=request.headers.get(SIGNATURE_HEADER),
                content_type=request.headers.get("Content-Type", ""),
            )
        )
        if state.hold is not None:
            await state.hold.wait()
        return web.Response(status=state.answer_status)

    app.router.add_post("/ipn", record)
    await server.start_server()
    try:
        yield state
    finally:
        await server.close()


# --- the provider API ----------------------------------------------------------------------


async def test_every_provider_call_needs_the_api_key(fake: FakeClient) -> None:
    body = {"price_amount": "1", "price_currency": "usd", "pay_currency": "btc"}
    for api_key in (None, "", "wrong-key"):
        created = await fake.call("POST", "/v1/payment", body=body, api_key=api_key)
        read = await fake.call("GET", f"/v1/payment/{FIRST_ID}", api_key=api_key)
        for answer in (created, read):
            assert answer.status == 401
            assert answer.body == {
                "status": False,
                "statusCode": 401,
                "code": "INVALID_API_KEY",
                "message": "Invalid api key",
            }
    assert (await fake.control("GET", "payments")).body == {"payments": []}


VALID = {"price_amount": "10", "price_currency": "usd", "pay_currency": "btc"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"price_amount": None}, "price_amount"),
        ({"price_currency": None}, "price_currency"),
        ({"pay_currency": None}, "pay_currency"),
        ({"price_amount": "0"}, "greater than 0"),
        ({"price_amount": 0}, "greater than 0"),
        ({"price_amount": "-5"}, "greater than 0"),
        ({"price_amount": -0.5}, "greater than 0"),
        ({"price_amount": "ten"}, "must be a number"),
        ({"price_amount": "1e3"}, "must be a number"),
        ({"price_amount": "NaN"}, "must be a number"),
        ({"price_amount": True}, "must be a number"),
        ({"price_amount": [1]}, "must be a number"),
        ({"price_amount": "0.0000000000000000001"}, "at most 18 decimal places"),
        ({"price_amount": "1000000000000000"}, "less than"),
        ({"price_currency": "xyz"}, "price_currency"),
        ({"pay_currency": "doge"}, "pay_currency"),
        ({"pay_currency": "usd"}, "crypto"),
        ({"pay_currency": 7}, "pay_currency"),
        ({"pay_amount": "0"}, "pay_amount"),
        ({"order_id": 42}, "order_id"),
        ({"order_description": ["x"]}, "order_description"),
        ({"ipn_callback_url": "ftp://example.com/ipn"}, "ipn_callback_url"),
        ({"ipn_callback_url": "not a url"}, "ipn_callback_url"),
        ({"ipn_callback_url": 5}, "ipn_callback_url"),
    ],
)
async def test_invalid_payments_are_refused_with_a_reason(
    fake: FakeClient, change: dict[str, Any], reason: str
) -> None:
    body = {key: value for key, value in (VALID | change).items() if value is not None}
    answer = await fake.call("POST", "/v1/payment", body=body)
    assert answer.status == 400
    assert answer.body["code"] == "INVALID_REQUEST_PARAMS"
    assert answer.body["statusCode"] == 400
    assert reason in answer.body["message"]
    assert (await fake.control("GET", "payments")).body == {"payments": []}


@pytest.mark.parametrize("data", ["", "{", "[1, 2]", '"text"', '{"price_amount": NaN}'])
async def test_a_body_that_is_not_a_json_object_is_refused(fake: FakeClient, data: str) -> None:
    answer = await fake.call("POST", "/v1/payment", data=data)
    assert answer.status == 400
    assert answer.body["code"] == "INVALID_REQUEST_PARAMS"


async def test_a_created_payment_waits_and_reads_back_the_same(fake: FakeClient) -> None:
    created = await fake.create(
        price_amount="3999.5",
        price_currency="USD",
        pay_currency="btc",
        order_id="RGDBP-21314",
        order_description="Apple Macbook Pro 2019 x 1",
        ipn_callback_url="https://app.example/ipn",
    )
    assert created["payment_id"] == FIRST_ID
    assert created["payment_status"] == "waiting"
    assert created["price_amount"] == Decimal("3999.5")
    assert created["price_currency"] == "usd"
    # 3999.5 USD at 60000 USD/BTC is 0.06665833..., rounded up to 8 decimals
    assert created["pay_amount"] == Decimal("0.06665834")
    assert created["pay_currency"] == "btc"
    assert created["actually_paid"] == 0
    assert created["order_id"] == "RGDBP-21314"
    assert created["order_description"] == "Apple Macbook Pro 2019 x 1"
    assert created["ipn_callback_url"] == "https://app.example/ipn"
    assert created["pay_address"].startswith("bc1q")
    assert created["purchase_id"].isdigit()
    assert created["created_at"] == created["updated_at"]
    assert created["created_at"].endswith("Z")

    read = await fake.get(FIRST_ID)
    assert read.status == 200
    assert read.body == created


async def test_unknown_payments_are_not_found(fake: FakeClient) -> None:
    missing = await fake.get(FIRST_ID)
    assert missing.status == 404
    assert missing.body["code"] == "PAYMENT_NOT_FOUND"
    assert (await fake.call("GET", "/v1/payment/abc")).status == 400
    assert (await fake.progress(FIRST_ID, status="finished")).status == 404
    resend = await fake.control("POST", f"payments/{FIRST_ID}/resend-ipn")
    assert resend.status == 404


async def test_pay_amount_is_price_amount_for_the_same_currency(fake: FakeClient) -> None:
    payment = await fake.create(price_amount="0.123456789", price_currency="btc")
    assert payment["pay_amount"] == Decimal("0.123456789")


async def test_pay_amount_given_by_the_client_is_kept(fake: FakeClient) -> None:
    payment = await fake.create(price_amount="10", pay_amount="0.00017")
    assert payment["pay_amount"] == Decimal("0.00017")


async def test_ids_and_addresses_are_the_same_on_every_run(start_fake: StartFake) -> None:
    runs = []
    for _ in range(2):
        fake = await start_fake(CONFIG)
        runs.append(
            [
                await fake.create(pay_currency="btc"),
                await fake.create(pay_currency="eth"),
                await fake.create(pay_currency="btc"),
            ]
        )
    first, second = runs
    keys = ("payment_id", "pay_address", "purchase_id", "pay_amount")
    assert [[p[key] for key in keys] for p in first] == [[p[key] for key in keys] for p in second]
    assert [p["payment_id"] for p in first] == [FIRST_ID, FIRST_ID + 1, FIRST_ID + 2]
    assert len({p["pay_address"] for p in first}) == 3
    assert first[1]["pay_address"].startswith("0x")
    assert len(first[1]["pay_address"]) == 42


async def test_the_first_payment_id_can_be_chosen(start_fake: StartFake) -> None:
    fake = await start_fake(PaymentsFakeConfig(API_KEY, IPN_SECRET, first_payment_id=77))
    assert (await fake.create())["payment_id"] == 77


@pytest.mark.parametrize(
    ("sent", "written"),
    [
        ('"0.10000001"', "0.10000001"),
        ("0.10000001", "0.10000001"),
        ('"0.123456789012345678"', "0.123456789012345678"),
        ("0.123456789012345678", "0.123456789012345678"),
        ('"999999999999999.99"', "999999999999999.99"),
        ('"12.50"', "12.5"),
        ('"0.00000001"', "1e-8"),
    ],
)
async def test_amounts_survive_the_round_trip_exactly(
    fake: FakeClient, sent: str, written: str
) -> None:
    data = f'{{"price_amount": {sent}, "price_currency": "btc", "pay_currency": "btc"}}'
    created = await fake.call("POST", "/v1/payment", data=data)
    assert created.status == 201, created.raw
    # a JSON number, with the exact digits, not a float's
    assert f'"price_amount":{written},'.encode() in created.raw
    expected = Decimal(json.loads(sent)) if sent.startswith('"') else Decimal(sent)
    assert created.body["price_amount"] == expected
    assert created.body["pay_amount"] == expected
    read = await fake.get(created.body["payment_id"])
    assert read.body["price_amount"] == expected


# --- IPN ------------------------------------------------------------------------------------


async def test_each_state_change_sends_one_signed_ipn(fake: FakeClient, receiver: Receiver) -> None:
    payment = await fake.create(ipn_callback_url=receiver.url, order_id="o-1")
    statuses: list[PaymentStatus] = [s for s in PaymentStatus if s is not PaymentStatus.WAITING]
    statuses.append(PaymentStatus.WAITING)  # any state may follow any other
    for count, status in enumerate(statuses, start=1):
        answer = await fake.progress(payment["payment_id"], status=status)
        assert answer.status == 200
        assert answer.body["ipn"] == {"delivered": True, "status": 200, "error": None}
        assert answer.body["payment"]["payment_status"] == status
        assert len(receiver.received) == count
        ipn = receiver.received[-1]
        assert ipn.body["payment_status"] == status
        assert ipn.content_type == "application/json"
        assert verify(ipn.raw, ipn.signature, IPN_SECRET)
        # the IPN is the whole payment, exactly as the provider API shows it
        current = await fake.get(payment["payment_id"])
        assert ipn.raw == current.raw == canonical_body(current.body)
    log = (await fake.control("GET", "ipn-log")).body["attempts"]
    assert [entry["payment_status"] for entry in log] == statuses
    assert all(entry["delivered"] and entry["status"] == 200 for entry in log)
    assert {entry["url"] for entry in log} == {receiver.url}


async def test_the_signature_fails_for_another_secret_or_a_changed_body(
    fake: FakeClient, receiver: Receiver
) -> None:
    payment = await fake.create(ipn_callback_url=receiver.url)
    await fake.progress(payment["payment_id"], status="partially_paid", actually_paid="0.0001")
    ipn = receiver.received[-1]
    assert ipn.body["actually_paid"] == Decimal("0.0001")
    assert verify(ipn.raw, ipn.signature, IPN_SECRET)
    assert not verify(ipn.raw, ipn.signature, "another-secret")
    tampered = ipn.raw.replace(b'"actually_paid":0.0001', b'"actually_paid":0.0002')
    assert tampered != ipn.raw
    assert not verify(tampered, ipn.signature, IPN_SECRET)
    assert not verify(ipn.raw, None, IPN_SECRET)


async def test_through_walks_the_happy_path_one_ipn_per_step(
    fake: FakeClient, receiver: Receiver
) -> None:
    payment = await fake.create(ipn_callback_url=receiver.url, price_amount="150")
    answer = await fake.progress(payment["payment_id"], status="finished", through=True)
    assert answer.status == 200
    walked = [status.value for status in HAPPY_PATH[1:]]
    assert [step["payment_status"] for step in answer.body["steps"]] == walked
    assert all(step["ipn"]["delivered"] for step in answer.body["steps"])
    assert [ipn.body["payment_status"] for ipn in receiver.received] == walked
    assert all(verify(ipn.raw, ipn.signature, IPN_SECRET) for ipn in receiver.received)
    # the coins arrive with the first paid state
    assert {ipn.body["actually_paid"] for ipn in receiver.received} == {Decimal("0.0025")}
    assert answer.body["payment"]["payment_status"] == "finished"
    assert answer.body["payment"]["actually_paid"] == Decimal("0.0025")


async def test_through_starts_from_the_current_state(fake: FakeClient, receiver: Receiver) -> None:
    payment = await fake.create(ipn_callback_url=receiver.url)
    await fake.progress(payment["payment_id"], status="confirmed")
    answer = await fake.progress(payment["payment_id"], status="finished", through=True)
    assert [step["payment_status"] for step in answer.body["steps"]] == ["sending", "finished"]
    backwards = await fake.progress(payment["payment_id"], status="confirming", through=True)
    assert backwards.status == 409
    off_path = await fake.progress(payment["payment_id"], status="failed", through=True)
    assert off_path.status == 400
    assert len(receiver.received) == 3


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": "paid"},
        {"status": ["finished"]},
        {"status": "finished", "actually_paid": "-1"},
        {"status": "finished", "actually_paid": "lots"},
        {"status": "finished", "through": "yes"},
    ],
)
async def test_invalid_progress_is_refused(fake: FakeClient, body: dict[str, Any]) -> None:
    payment = await fake.create()
    answer = await fake.progress(payment["payment_id"], **body)
    assert answer.status == 400
    assert (await fake.get(payment["payment_id"])).body["payment_status"] == "waiting"


async def test_resend_sends_the_same_bytes_again(fake: FakeClient, receiver: Receiver) -> None:
    payment = await fake.create(ipn_callback_url=receiver.url)
    not_yet = await fake.control("POST", f"payments/{payment['payment_id']}/resend-ipn")
    assert not_yet.status == 409
    await fake.progress(payment["payment_id"], status="finished")
    for _ in range(2):
        answer = await fake.control("POST", f"payments/{payment['payment_id']}/resend-ipn")
        assert answer.status == 200
        assert answer.body["ipn"] == {"delivered": True, "status": 200, "error": None}
    first, *repeats = receiver.received
    assert len(repeats) == 2
    for repeat in repeats:
        assert repeat.raw == first.raw
        assert repeat.signature == first.signature
    log = (await fake.control("GET", "ipn-log")).body["attempts"]
    assert [entry["payment_status"] for entry in log] == ["finished"] * 3


async def test_an_unreachable_callback_is_reported_undelivered(fake: FakeClient) -> None:
    url = f"http://127.0.0.1:{free_port()}/ipn"
    payment = await fake.create(ipn_callback_url=url)
    answer = await fake.progress(payment["payment_id"], status="confirming")
    assert answer.status == 200
    ipn = answer.body["ipn"]
    assert ipn["delivered"] is False
    assert ipn["status"] is None
    assert ipn["error"]
    # the state changed all the same
    assert answer.body["payment"]["payment_status"] == "confirming"
    log = (await fake.control("GET", "ipn-log")).body["attempts"]
    assert log == [
        {
            "payment_id": payment["payment_id"],
            "payment_status": "confirming",
            "url": url,
            "delivered": False,
            "status": None,
            "error": ipn["error"],
        }
    ]


async def test_an_error_answer_from_the_app_is_not_a_delivery(
    fake: FakeClient, receiver: Receiver
) -> None:
    receiver.answer_status = 500
    payment = await fake.create(ipn_callback_url=receiver.url)
    answer = await fake.progress(payment["payment_id"], status="finished")
    assert answer.body["ipn"]["delivered"] is False
    assert answer.body["ipn"]["status"] == 500
    assert answer.body["ipn"]["error"] == "the app answered HTTP 500"  # not the app's shape
    assert len(receiver.received) == 1


async def test_an_app_that_does_not_answer_in_time_is_reported(
    start_fake: StartFake, receiver: Receiver
) -> None:
    fake = await start_fake(PaymentsFakeConfig(API_KEY, IPN_SECRET, ipn_timeout=0.2))
    receiver.hold = asyncio.Event()
    payment = await fake.create(ipn_callback_url=receiver.url)
    try:
        answer = await fake.progress(payment["payment_id"], status="finished")
    finally:
        receiver.hold.set()
    assert answer.body["ipn"]["delivered"] is False
    assert answer.body["ipn"]["status"] is None
    assert "0.2s" in answer.body["ipn"]["error"]


async def test_the_book_is_read_once_no_ipn_is_being_delivered(
    fake: FakeClient, receiver: Receiver
) -> None:
    """The payment is finished at the provider before its IPN reaches the app: a book read
    meanwhile would show a payment never credited (a load cut off mid-request leaves one)."""
    receiver.hold = asyncio.Event()
    payment = await fake.create(ipn_callback_url=receiver.url)
    progress = asyncio.create_task(fake.progress(payment["payment_id"], status="finished"))
    for _ in range(200):
        if receiver.received:
            break
        await asyncio.sleep(0.01)
    assert (await fake.control("GET", "ipn-log")).body["delivering"] == 1
    url = str(fake.server.make_url("/"))
    reading = asyncio.create_task(asyncio.to_thread(provider_book, url))
    await asyncio.sleep(0.3)
    assert not reading.done()  # it waits for the delivery in flight
    receiver.hold.set()
    await progress
    [entry] = await reading
    assert entry.status == "finished"
    assert entry.last_ipn == "finished, answered HTTP 200"
    assert (await fake.control("GET", "ipn-log")).body["delivering"] == 0


async def test_a_payment_without_callback_url_sends_nothing(fake: FakeClient) -> None:
    payment = await fake.create()
    answer = await fake.progress(payment["payment_id"], status="finished")
    assert answer.body["ipn"] == {
        "delivered": False,
        "status": None,
        "error": "the payment has no ipn_callback_url",
    }
    assert answer.body["payment"]["payment_status"] == "finished"
    assert (await fake.control("GET", "ipn-log")).body == {"attempts": [], "delivering": 0}


# --- modes and reset ------------------------------------------------------------------------


async def test_error_mode_fails_provider_calls_only(fake: FakeClient) -> None:
    mode = await fake.control("POST", "mode", mode="error", status=502)
    assert mode.body == {"mode": "error", "status": 502, "delay_ms": 1000}
    answer = await fake.call("POST", "/v1/payment", body=VALID)
    assert answer.status == 502
    assert answer.body["statusCode"] == 502
    assert answer.body["status"] is False
    assert (await fake.get(FIRST_ID)).status == 502
    # nothing happened, and the control API still answers
    assert (await fake.control("GET", "payments")).body == {"payments": []}
    mode = (await fake.control("GET", "mode")).body
    assert (mode["mode"], mode["misbehaved"]) == ("error", 2)  # each /v1 answer counted
    await fake.control("POST", "mode", mode="normal")
    assert (await fake.create())["payment_id"] == FIRST_ID
    assert (await fake.control("GET", "mode")).body["misbehaved"] == 2  # normal: not counted


async def test_error_mode_answers_503_by_default(fake: FakeClient) -> None:
    await fake.control("POST", "mode", mode="error")
    assert (await fake.call("GET", "/v1/status")).status == 503


async def test_slow_mode_delays_provider_answers(fake: FakeClient) -> None:
    await fake.control("POST", "mode", mode="slow", delay_ms=300)
    started = time.monotonic()
    created = await fake.call("POST", "/v1/payment", body=VALID)
    elapsed = time.monotonic() - started
    assert elapsed >= 0.3
    assert created.status == 201
    assert created.body["payment_id"] == FIRST_ID


async def test_malformed_mode_answers_broken_json_but_acts(fake: FakeClient) -> None:
    await fake.control("POST", "mode", mode="malformed")
    answer = await fake.call("POST", "/v1/payment", body=VALID)
    assert answer.status == 200
    assert answer.raw
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.raw)
    # the provider did create the payment: the client just cannot read its id
    payments = (await fake.control("GET", "payments")).body["payments"]
    assert [payment["payment_id"] for payment in payments] == [FIRST_ID]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"mode": "chaotic"},
        {"mode": "error", "status": 200},
        {"mode": "error", "status": "503"},
        {"mode": "slow", "delay_ms": -1},
        {"mode": "slow", "delay_ms": 1.5},
    ],
)
async def test_invalid_modes_are_refused(fake: FakeClient, body: dict[str, Any]) -> None:
    answer = await fake.call("POST", "/_control/mode", data=json.dumps(body))
    assert answer.status == 400
    assert (await fake.control("GET", "mode")).body["mode"] == "normal"


async def test_reset_forgets_everything(fake: FakeClient, receiver: Receiver) -> None:
    payment = await fake.create(ipn_callback_url=receiver.url)
    await fake.progress(payment["payment_id"], status="finished")
    await fake.control("POST", "mode", mode="slow", delay_ms=5)
    answer = await fake.control("POST", "reset")
    assert answer.status == 200
    assert (await fake.control("GET", "payments")).body == {"payments": []}
    assert (await fake.control("GET", "ipn-log")).body == {"attempts": [], "delivering": 0}
    assert (await fake.control("GET", "mode")).body["mode"] == "normal"
    assert (await fake.get(payment["payment_id"])).status == 404
    again = await fake.create(ipn_callback_url=receiver.url)
    assert again["payment_id"] == payment["payment_id"]
    assert again["pay_address"] == payment["pay_address"]


async def test_the_api_status_needs_no_key(fake: FakeClient) -> None:
    answer = await fake.call("GET", "/v1/status", api_key=None)
    assert answer.status == 200
    assert answer.body == {"message": "OK"}
