"""The misbehaviour the fakes share: modes, their control body, the middleware."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from isolation_harness.reference_app.fakes.control import (
    COMMON_MODES,
    FAULT_MESSAGE,
    Behaviour,
    InvalidBehaviour,
    Mode,
    misbehaviour_middleware,
    parse_behaviour,
    whole_number,
)


def test_the_default_behaviour_and_its_json() -> None:
    assert Behaviour().to_json() == {"mode": "normal", "status": 503, "delay_ms": 1000}
    text = json.dumps(Behaviour(Mode.SLOW, delay_ms=5).to_json())
    assert json.loads(text) == {"mode": "slow", "status": 503, "delay_ms": 5}


def test_a_body_gives_its_behaviour() -> None:
    assert parse_behaviour({"mode": "error", "status": 500}) == Behaviour(Mode.ERROR, 500)
    assert parse_behaviour({"mode": "slow", "delay_ms": 0}) == Behaviour(Mode.SLOW, delay_ms=0)
    assert parse_behaviour({"mode": "malformed"}) == Behaviour(Mode.MALFORMED)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, '"mode" must be one of normal, error, slow, malformed, not None'),
        ({"mode": "stale"}, "\"mode\" must be one of normal, error, slow, malformed, not 'stale'"),
        ({"mode": "error", "status": 200}, '"status" must be an HTTP error status, 400 to 599'),
        ({"mode": "error", "status": "503"}, '"status" must be an HTTP error status'),
        ({"mode": "error", "status": True}, '"status" must be an HTTP error status'),
        ({"mode": "slow", "delay_ms": -1}, '"delay_ms" must be a whole number of milliseconds'),
        ({"mode": "slow", "delay_ms": 1.5}, '"delay_ms" must be a whole number of milliseconds'),
        ({"mode": "slow", "delay_ms": 600_001}, "0 to 600000"),
    ],
)
def test_a_bad_body_says_what_is_wrong(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidBehaviour) as refused:
        parse_behaviour(body)
    assert message in str(refused.value)


def test_a_fake_chooses_its_modes() -> None:
    assert Mode.STALE not in COMMON_MODES
    assert parse_behaviour({"mode": "stale"}, tuple(Mode)).mode is Mode.STALE
    with pytest.raises(InvalidBehaviour, match="normal, error, slow, stale, malformed"):
        parse_behaviour({"mode": "odd"}, tuple(Mode))


def test_whole_number() -> None:
    assert whole_number({}, "n", 7, 1, 9, "a count") == 7
    assert whole_number({"n": 9}, "n", 7, 1, 9, "a count") == 9
    with pytest.raises(InvalidBehaviour, match=r'^"n" must be a count, 1 to 9$'):
        whole_number({"n": 10}, "n", 7, 1, 9, "a count")


class Oops(Exception):
    """A toy fake's error: answered as ``{"oops": code}``."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code


@dataclass
class ToyFake:
    """What the toy fake's state would be: its behaviour and the requests it handled."""

    behaviour: Behaviour = field(default_factory=Behaviour)
    handled: list[str] = field(default_factory=list)


TOY = web.AppKey("toy", ToyFake)
Client = TestClient[web.Request, web.Application]


def _oops_response(error: Oops) -> web.Response:
    return web.json_response({"oops": error.code}, status=error.status)


async def _ok(request: web.Request) -> web.Response:
    request.app[TOY].handled.append(request.path)
    return web.json_response({"answer": "a long enough body"})


async def _missing(request: web.Request) -> web.Response:
    request.app[TOY].handled.append(request.path)
    raise Oops(404, "missing")


@pytest.fixture
def toy() -> ToyFake:
    return ToyFake()


@pytest.fixture
async def client(toy: ToyFake) -> AsyncIterator[Client]:
    middleware = misbehaviour_middleware(
        lambda request: request.app[TOY].behaviour,
        Oops,
        _oops_response,
        lambda status: Oops(status, FAULT_MESSAGE),
    )
    app = web.Application(middlewares=[middleware])
    app[TOY] = toy
    for prefix in ("/v1", "/_control"):
        app.router.add_get(f"{prefix}/ok", _ok)
        app.router.add_get(f"{prefix}/missing", _missing)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def test_normal_answers_and_errors_in_the_fakes_shape(client: Client) -> None:
    answer = await client.get("/v1/ok")
    assert (answer.status, await answer.json()) == (200, {"answer": "a long enough body"})
    for path in ("/v1/missing", "/_control/missing"):
        answer = await client.get(path)
        assert (answer.status, await answer.json()) == (404, {"oops": "missing"})


async def test_error_mode_answers_the_fault_without_handling(client: Client, toy: ToyFake) -> None:
    toy.behaviour = Behaviour(Mode.ERROR, status=502)
    answer = await client.get("/v1/ok")
    assert (answer.status, await answer.json()) == (502, {"oops": FAULT_MESSAGE})
    assert toy.handled == []
    assert (await client.get("/_control/ok")).status == 200


async def test_slow_mode_waits_then_handles(client: Client, toy: ToyFake) -> None:
    toy.behaviour = Behaviour(Mode.SLOW, delay_ms=200)
    started = time.monotonic()
    assert (await client.get("/v1/ok")).status == 200
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    assert (await client.get("/_control/ok")).status == 200
    assert time.monotonic() - started < 0.2


async def test_malformed_mode_halves_every_answer_even_errors(client: Client, toy: ToyFake) -> None:
    toy.behaviour = Behaviour(Mode.MALFORMED)
    for path, whole in [
        ("/v1/ok", b'{"answer": "a long enough body"}'),
        ("/v1/missing", b'{"oops": "missing"}'),
    ]:
        answer = await client.get(path)
        assert answer.status == 200
        assert await answer.read() == whole[: len(whole) // 2]
    assert toy.handled == ["/v1/ok", "/v1/missing"]
    assert (await client.get("/_control/missing")).status == 404


async def test_stale_is_left_to_the_fake(client: Client, toy: ToyFake) -> None:
    toy.behaviour = Behaviour(Mode.STALE)
    answer = await client.get("/v1/ok")
    assert (answer.status, await answer.json()) == (200, {"answer": "a long enough body"})
