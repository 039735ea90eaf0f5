"""The served OpenAPI document tells the truth: requests generated from it (schemathesis,
hypothesis) for every operation, as a user and as the admin, on real data.

For every answer: no 5xx; its status, content type, headers and body as the document says;
a request the document calls valid is refused only by its state (401/403/404/409/410) or by a
rule the operation declares (``x-rules``); a request it calls invalid is refused with a 4xx.
The examples are derandomized (the same ones every run, so the check cannot flake); set
``API_PROPERTIES_EXAMPLES`` and ``API_PROPERTIES_SEED`` to explore further.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from isolation_harness.reference_app import payments_signature
from isolation_harness.reference_app.fakes.payments import signing
from tests.plugins.reference_app import ADMIN_TOKEN, IPN_SECRET, RunningApp, StartApp

pytestmark = pytest.mark.timeout(600)

#: examples per operation, of requests the document calls valid, by the caller it is for;
#: a quarter as many invalid ones, and a few of each by the other caller (refused at once)
EXAMPLES = int(os.environ.get("API_PROPERTIES_EXAMPLES", "20"))
OTHER_CALLER_EXAMPLES = 2
SEED = os.environ.get("API_PROPERTIES_SEED")
#: answers to a request the document calls valid that its state explains
STATE_REFUSALS = frozenset({401, 403, 404, 409, 410})
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass
class World:
    """Real data the generated requests point at: ids of every kind, the caller's own and
    another user's."""

    base_url: str
    user_token: str
    ids: dict[str, list[str]] = field(default_factory=dict)
    #: operation -> statuses answered (how deep the examples went)
    answered: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))

    def token(self, caller: str) -> str:
        return ADMIN_TOKEN if caller == "admin" else self.user_token


async def test_generated_requests_get_documented_answers(start_app: StartApp) -> None:
    api = await start_app(fault_api=False)
    world = await _world(api)
    status, document = await api.call("GET", "/openapi.json")
    assert status == 200, document
    failures = await asyncio.to_thread(_explore, document, world)
    for label, statuses in sorted(world.answered.items()):
        print(f"{label}: {dict(sorted(statuses.items()))}")
    assert not failures, f"{len(failures)} answers the document does not describe:\n" + (
        "\n\n".join(failures[:20])
    )


def _explore(document: dict[str, Any], world: World) -> list[str]:
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(methods) for methods in document["paths"].values())
    with requests.Session() as session:
        for operation in operations:
            for caller in ("user", "admin"):
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    count = OTHER_CALLER_EXAMPLES
                    if caller == _meant_for(operation):
                        count = EXAMPLES if mode is GenerationMode.POSITIVE else EXAMPLES // 4
                    strategy = operation.as_strategy(generation_mode=mode)
                    _examples(operation, caller, mode, strategy, count, world, session, failures)
            # and the document's own examples (each currency's smallest, 1 and largest amount)
            documented = schema.get_strategies_from_examples(operation)
            if documented:
                _examples(operation, _meant_for(operation), GenerationMode.POSITIVE,
                          st.one_of(documented), 3 * len(documented), world, session,
                          failures)  # fmt: skip
    return failures


def _meant_for(operation: Any) -> str:
    """Whose operation it is: the admin's (under /api/admin/), or a user's (the rest)."""
    return "admin" if operation.path.startswith("/api/admin/") else "user"


def _examples(
    operation: Any, caller: str, mode: GenerationMode, strategy: st.SearchStrategy[Any],
    count: int, world: World,
    session: requests.Session, failures: list[str],
) -> None:  # fmt: skip
    rules: Mapping[str, str] = operation.definition.raw.get("x-rules", {})
    path_names = [p.name for p in operation.path_parameters]

    @hypothesis.settings(
        max_examples=count,
        derandomize=SEED is None,
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=strategy, data=st.data())
    def example(case: Any, data: st.DataObject) -> None:
        def negated(location: ParameterLocation) -> bool:  # what the request gets wrong
            return case.meta is not None and case.meta.is_negative_at(location)

        for name in path_names:  # mostly real ids (the caller's or another's), some made up
            real = world.ids.get(f"{operation.path.split('/')[2]}:{name}", world.ids.get(name))
            if real and not negated(ParameterLocation.PATH) and data.draw(st.integers(0, 3)):
                case.path_parameters[name] = data.draw(st.sampled_from(real))
        body = case.body
        if isinstance(body, dict) and not negated(ParameterLocation.BODY):  # ids in bodies too
            for name in body.keys() & world.ids.keys():
                if data.draw(st.integers(0, 3)):
                    body[name] = data.draw(st.sampled_from(world.ids[name]))
        headers = {}
        if not negated(ParameterLocation.HEADER):
            headers["Authorization"] = f"Bearer {world.token(caller)}"
            if operation.path.endswith("/ipn") and isinstance(case.body, dict):
                headers["x-nowpayments-sig"] = _signed(case.body)
        problem = _answer_problem(case, mode, rules, session, world, headers)
        if problem is not None:
            failures.append(f"{operation.label} as {caller} ({mode.value}): {problem}")

    if SEED is not None:
        example = hypothesis.seed(int(SEED))(example)
    try:
        example()
    except hypothesis.errors.Unsatisfiable:
        # nothing to get wrong: no parameter and no body (e.g. GET /health/live)
        if mode is GenerationMode.POSITIVE or operation.body or operation.query:
            raise


def _answer_problem(
    case: Any, mode: GenerationMode, rules: Mapping[str, str], session: requests.Session,
    world: World, headers: dict[str, str],
) -> str | None:  # fmt: skip
    try:
        response = case.call(base_url=world.base_url, session=session, headers=headers,
                             timeout=30)  # fmt: skip
    except requests.RequestException as exc:
        return f"no answer ({exc!r}) to {_request(case)}"
    world.answered[case.operation.label][response.status_code] += 1
    checks: list[Callable[..., Any]] = list(CONFORMANCE)
    if mode is GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)
    try:
        case.validate_response(response, checks=checks, headers=headers)
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis' failures (one or a group)
        return f"{str(exc).strip()}\n  request: {_request(case)}\n  answer: {_answer(response)}"
    if mode is GenerationMode.POSITIVE and response.status_code >= 400:
        code = _error_code(response)
        if response.status_code not in STATE_REFUSALS and code not in rules:
            return (
                f"a request the document calls valid was refused\n  request: {_request(case)}"
                f"\n  answer: {_answer(response)}"
            )
    return None


def _signed(body: dict[str, Any]) -> str:
    """The provider's signature of ``body`` (by the fake's signer, or the app's where the fake
    refuses to write it: non-ASCII keys, floats), so that signed callbacks reach the deposits."""
    try:
        return signing.signature(signing.write(body), IPN_SECRET)
    except (ValueError, TypeError):  # as the app reads it: numbers as decimals
        return payments_signature.sign(json.loads(json.dumps(body), parse_float=Decimal),
                                       IPN_SECRET)  # fmt: skip


def _error_code(response: Any) -> str | None:
    try:
        return str(json.loads(response.content)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def _request(case: Any) -> str:
    return (
        f"{case.method} {case.formatted_path} query={case.query!r} "
        f"headers={_without_auth(case.headers)!r} body={_short(case.body)}"
    )


def _without_auth(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}


def _answer(response: Any) -> str:
    kind = {k.lower(): v for k, v in response.headers.items()}.get("content-type")
    return f"{response.status_code} {kind} {response.content[:300]!r}"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) < 300 else text[:300] + "..."


async def _world(api: RunningApp) -> World:
    """Two users with money, an offer of each, trades, deposits, quotes and an order."""
    me, token = await api.new_user(funds={"BTC": "5", "USDT": "100000", "ETH": "50"})
    other, other_token = await api.new_user(funds={"BTC": "5", "USDT": "100000"})
    ids: dict[str, list[str]] = {}

    async def made(name: str, method: str, path: str, token: str, body: Any, field: str,
                   keyed: bool = True) -> str:  # fmt: skip
        status, answer = await api.call(
            method, path, token=token, json=body, key=secrets.token_hex(8) if keyed else None
        )
        assert status in (200, 201), (path, answer)
        ids.setdefault(name, []).append(str(answer[field]))
        return str(answer[field])

    offer = {"currency": "BTC", "fiat": "USD", "price": "60000", "amount": "1",
             "min_amount": "0.001", "max_amount": "0.5"}  # fmt: skip
    mine = await made("offer_id", "POST", "/api/p2p/offers", token, offer, "offer_id", False)
    theirs = await made("offer_id", "POST", "/api/p2p/offers", other_token, offer, "offer_id",
                        False)  # fmt: skip
    # paid, paid (the caller sells), open, disputed
    for buyer, on in ((token, theirs), (other_token, mine), (token, theirs), (token, theirs)):
        await made("trade_id", "POST", "/api/p2p/trades", buyer,
                   {"offer_id": on, "amount": "0.01"}, "trade_id")  # fmt: skip
    trades = ids["trade_id"]
    for buyer, trade, step in ((token, 0, "paid"), (other_token, 1, "paid"), (token, 3, "paid"),
                               (token, 3, "dispute")):  # fmt: skip
        status, answer = await api.call("POST", f"/api/p2p/trades/{trades[trade]}/{step}",
                                        token=buyer)  # fmt: skip
        assert status == 200, answer
    for who in (token, other_token):
        deposit = await made("deposit_id", "POST", "/api/nowpayments/create-deposit", who,
                             {"currency": "BTC", "amount": "0.01"}, "id")  # fmt: skip
        status, answer = await api.call("GET", f"/api/nowpayments/deposits/{deposit}", token=who)
        ids.setdefault("payment_id", []).append(answer["provider_payment_id"])
    await api.call(
        "POST", "/api/admin/liquidity", token=ADMIN_TOKEN, key=secrets.token_hex(8),
        json={"currency": "BTC", "amount": "10"},
    )  # fmt: skip
    for who in (token, other_token):
        await made("swap:quote_id", "POST", "/api/swap/quotes", who,
                   {"sell": "USDT", "buy": "BTC", "amount": "100"}, "quote_id", False)  # fmt: skip
        express = await made("express:quote_id", "POST", "/api/express/quotes", who,
                             {"buy": "BTC", "pay": "USDT", "amount": "0.001"}, "quote_id",
                             False)  # fmt: skip
        await made("order_id", "POST", f"/api/express/quotes/{express}/orders", who, None,
                   "order_id")  # fmt: skip
    ids["user_id"] = [str(me), str(other)]
    assert all(uuid.UUID(i) for name, found in ids.items() if name != "payment_id" for i in found)
    return World(api.url("").rstrip("/"), token, ids)
