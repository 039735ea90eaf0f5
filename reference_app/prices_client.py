"""Client of the price source: the current price of a pair, or a 503 that names the cause.

The source answers ``GET /v1/prices/{base}-{quote}`` with
``{"pair": "BTC-USDT", "price": "64000.00", "as_of": "<ISO 8601, UTC>"}``
(see :mod:`reference_app.fakes.prices`). Whatever goes wrong on the way (no connection,
no answer in time, an HTTP error, a body that is not such an object) becomes
:class:`DependencyUnavailable` with code ``price_source_unavailable``; a price observed
longer ago than ``max_age`` seconds becomes ``stale_price``: quoting on it would hand
users (or take from them) the difference to the market.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import aiohttp

from isolation_harness.reference_app.clock import utc_now
from isolation_harness.reference_app.errors import DependencyUnavailable
from isolation_harness.reference_app.http_reads import AnswerTooLarge, read_body

#: seconds after which a price is too old to quote on
DEFAULT_MAX_AGE = 60.0
#: the scale of NUMERIC(38, 18): a price with more decimal places could not be stored as sent
MAX_PRICE_PLACES = 18
MAX_PRICE = Decimal(10) ** 20
_DECIMAL_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True)
class MarketPrice:
    """What one unit of ``base`` is worth in ``quote`` (``pair`` is ``BASE-QUOTE``), and when."""

    pair: str
    price: Decimal
    as_of: datetime

    def stale(self, now: datetime, max_age: float) -> str | None:
        """Why nothing may be priced on it at ``now`` (None: it may): older than
        ``max_age`` seconds, or dated in the future (the source's clock is wrong, and what
        it says of the price's time cannot be trusted)."""
        age = (now - self.as_of).total_seconds()
        when = self.as_of.isoformat()
        if age < 0:
            return (
                f"the price of {self.pair} is dated {-age:.1f} s ahead of this clock (as of {when})"
            )
        if age > max_age:
            return (
                f"the price of {self.pair} is {age:.0f} s old "
                f"(as of {when}; at most {max_age:g} s accepted)"
            )
        return None


class MalformedPrice(ValueError):
    """The source answered 200 with something that is not a price of the pair asked."""


class PriceSource:
    """Fetches prices over the app's HTTP session, each call within ``timeout`` seconds."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        timeout: float,
        *,
        max_age: float = DEFAULT_MAX_AGE,
        service: str = "swap",
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_age = max_age
        #: the service named in the errors (the one whose use case needed the price)
        self.service = service
        self._clock = clock

    async def price(self, base: str, quote: str) -> MarketPrice:
        """The current price of ``base`` in ``quote``; :class:`DependencyUnavailable` if none."""
        pair = f"{base}-{quote}"
        url = f"{self.base_url}/v1/prices/{pair}"
        try:
            async with self.http.get(
                url, timeout=aiohttp.ClientTimeout(total=self.timeout), allow_redirects=False
            ) as response:
                status = response.status
                body = await read_body(response)
        except AnswerTooLarge as exc:
            raise self._unavailable(pair, f"malformed answer ({exc})") from exc
        except TimeoutError as exc:
            raise self._unavailable(pair, f"no answer within {self.timeout:g} s") from exc
        except (aiohttp.ClientError, OSError) as exc:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise self._unavailable(pair, f"cannot reach it ({detail})") from exc
        if status != 200:
            raise self._unavailable(pair, f"it answered HTTP {status}")
        try:
            market = parse_price(body, pair)
        except MalformedPrice as exc:
            raise self._unavailable(pair, f"malformed answer ({exc})") from exc
        stale = market.stale(self._clock(), self.max_age)
        if stale is not None:
            raise DependencyUnavailable(
                f"price source: {stale}", service=self.service, code="stale_price"
            )
        return market

    def _unavailable(self, pair: str, cause: str) -> DependencyUnavailable:
        return DependencyUnavailable(
            f"price source unavailable: {cause} (pair {pair}, {self.base_url})",
            service=self.service,
            code="price_source_unavailable",
        )


def parse_price(body: bytes, pair: str) -> MarketPrice:
    """The price of ``pair`` from the source's answer; :class:`MalformedPrice` if it is not."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise MalformedPrice("not JSON") from None
    if not isinstance(data, dict):
        raise MalformedPrice("not a JSON object")
    if data.get("pair") != pair:
        raise MalformedPrice(f"pair is {data.get('pair')!r}, not {pair!r}")
    text = data.get("price")
    if not isinstance(text, str) or not _DECIMAL_TEXT.fullmatch(text):
        raise MalformedPrice(f"price {text!r} is not a decimal string")
    price = Decimal(text)
    exponent = price.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    if not 0 < price < MAX_PRICE or -exponent > MAX_PRICE_PLACES:
        raise MalformedPrice(f"price {text} is out of range")
    as_of_text = data.get("as_of")
    if not isinstance(as_of_text, str):
        raise MalformedPrice("as_of is missing")
    try:
        as_of = datetime.fromisoformat(as_of_text)
    except ValueError:
        raise MalformedPrice(f"as_of {as_of_text!r} is not an ISO 8601 time") from None
    if as_of.tzinfo is None:
        raise MalformedPrice(f"as_of {as_of_text!r} has no time zone")
    return MarketPrice(pair=pair, price=price, as_of=as_of.astimezone(UTC))
