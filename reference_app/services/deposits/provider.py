"""The payment provider (NOWPayments API), reached over HTTP through the ``payments`` link."""

from __future__ import annotations

import json
from decimal import Decimal

import aiohttp

from isolation_harness.reference_app.http_reads import AnswerTooLarge, read_body
from isolation_harness.reference_app.money import to_json
from isolation_harness.reference_app.services.deposits.domain import ProviderPayment

#: our currency -> NOWPayments' ticker (USDT is taken on TRON, as the provider names it)
PROVIDER_TICKERS: dict[str, str] = {"BTC": "btc", "ETH": "eth", "USDT": "usdttrc20"}


class ProviderUnavailable(Exception):
    """The provider failed, timed out or answered something unusable."""


class ProviderRefused(Exception):
    """The provider answered 4xx: it understood the request and refused it."""


class PaymentProvider:
    """Creates payments at a NOWPayments-compatible API."""

    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, api_key: str, timeout: float
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def create_payment(
        self, *, amount: Decimal, currency: str, order_id: str, ipn_callback_url: str
    ) -> ProviderPayment:
        """``POST /v1/payment`` for ``amount`` of ``currency``, paid in the same currency."""
        ticker = PROVIDER_TICKERS[currency]
        body = {
            "price_amount": to_json(amount),  # plain digits: never "7E-7"
            "price_currency": ticker,
            "pay_currency": ticker,
            "order_id": order_id,
            "order_description": f"deposit {order_id}",
            "ipn_callback_url": ipn_callback_url,
        }
        try:
            async with self._http.post(
                f"{self._base_url}/v1/payment",
                json=body,
                headers={"x-api-key": self._api_key},
                timeout=self._timeout,
                # a redirect would carry the API key to wherever it points
                allow_redirects=False,
            ) as response:
                text = (await read_body(response)).decode("utf-8", errors="replace")
                if 400 <= response.status < 500:
                    raise ProviderRefused(f"provider refused the payment ({response.status}): "
                                          f"{text[:200]}")  # fmt: skip
                if 300 <= response.status < 400:
                    raise ProviderUnavailable(
                        f"provider answered {response.status} (a redirect: not followed)"
                    )
                if response.status >= 500:
                    raise ProviderUnavailable(f"provider answered {response.status}")
        except AnswerTooLarge as exc:
            raise ProviderUnavailable(f"provider answered too much: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderUnavailable(f"provider unreachable ({type(exc).__name__})") from exc
        try:
            data = json.loads(text, parse_float=Decimal)
            return ProviderPayment(
                payment_id=str(data["payment_id"]),
                status=str(data["payment_status"]),
                pay_address=str(data["pay_address"]),
                pay_amount=Decimal(str(data["pay_amount"])),
                pay_currency=str(data["pay_currency"]).upper(),
            )
        except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
            raise ProviderUnavailable("provider answered a malformed payment") from exc
