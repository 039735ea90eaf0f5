"""A price source, faked as its own aiohttp app: fixed, deterministic prices, a drift and a
mode switch. Its protocol (price API, control API, errors) is in ``docs/fakes.md``.

Run standalone: ``python -m isolation_harness.reference_app.fakes.prices --port N``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from types import MappingProxyType
from typing import Any

from aiohttp import web

from isolation_harness.reference_app.fakes import control
from isolation_harness.reference_app.fakes.control import Mode

#: decimal places of a computed (inverse) price, and the most a set price may have
PRICE_PLACES = 18
MAX_PRICE = Decimal(10) ** 15
#: the direct pairs and their prices; every other pair served is the inverse of one of these
DEFAULT_PRICES: Mapping[str, Decimal] = MappingProxyType(
    {
        "BTC-USDT": Decimal("64000.00"),
        "BTC-USD": Decimal("64000.00"),
        "ETH-USDT": Decimal("3200.00"),
        "ETH-USD": Decimal("3200.00"),
        "BTC-ETH": Decimal("20.00000000"),
        "USDT-USD": Decimal("1.0000"),
    }
)
_CODE = r"[A-Z0-9]{2,10}"
_PAIR = re.compile(rf"({_CODE})-({_CODE})")
_DECIMAL_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)?")
DEFAULT_STALE_SECONDS = 3600
#: the largest drift per tick, either way
MAX_DRIFT = Decimal("0.5")
MAX_TICKS = 10_000
#: significant digits of a drifting price before it is rounded for display
DRIFT_PRECISION = 60


@dataclass(frozen=True)
class Behaviour(control.Behaviour):
    """The common behaviour, and how old the prices are in the ``stale`` mode."""

    stale_seconds: int = DEFAULT_STALE_SECONDS

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "stale_seconds": self.stale_seconds}


@dataclass(frozen=True)
class PricesFakeConfig:
    """The direct pairs the fake starts with (and returns to on reset)."""

    prices: Mapping[str, Decimal] = field(default_factory=lambda: DEFAULT_PRICES)


#: how the price fake speaks: its own error shape, plain JSON
DIALECT = control.Dialect(
    invalid_code="invalid_request",
    fault_code="injected_fault",
    error_body=lambda error: {"error": {"code": error.code, "message": error.message}},
)
_invalid = DIALECT.invalid


def inverse(price: Decimal) -> Decimal:
    """``1 / price``, exact up to :data:`PRICE_PLACES` decimal places (half-even)."""
    with localcontext() as context:
        context.prec = 60  # more digits than NUMERIC(38, 18) holds, before the quantize
        exact = Decimal(1) / price
        return exact.quantize(Decimal(1).scaleb(-PRICE_PLACES), ROUND_HALF_EVEN).normalize()


class PriceBook:
    """The fake's state: the direct prices and the current behaviour. No I/O."""

    def __init__(self, config: PricesFakeConfig) -> None:
        self.config = config
        self.behaviour = Behaviour()
        #: answers given while misbehaving, over the fake's life (never reset)
        self.misbehaved = control.Tally()
        #: each direct pair's price as set (its decimal places are the ones shown)
        self._direct: dict[str, Decimal] = {}
        #: each direct pair's price after the drift, exact to DRIFT_PRECISION digits
        self._drifted: dict[str, Decimal] = {}
        self.drift_rate = Decimal(0)
        self.ticks = 0
        self.reset()

    def price(self, pair: str) -> Decimal:
        """The price of ``pair``: set directly, or the inverse of its reverse pair."""
        base, quote = _split_pair(pair)
        if pair in self._direct:
            return self._shown(pair)
        reverse = f"{quote}-{base}"
        if reverse in self._direct:
            return inverse(self._shown(reverse))
        raise control.FakeError(404, "unknown_pair", f"no price for {pair}")

    def _shown(self, pair: str) -> Decimal:
        """The drifted price rounded to the places it was set with, kept in range."""
        given, exact = self._direct[pair], self._drifted[pair]
        if exact == given:
            return given
        exponent = given.as_tuple().exponent
        assert isinstance(exponent, int)
        unit = Decimal(1).scaleb(min(exponent, 0))
        shown = exact.quantize(unit, ROUND_HALF_EVEN)
        return min(max(shown, unit), MAX_PRICE - unit)

    def set_drift(self, rate: Decimal) -> None:
        """Drift every direct price by ``rate`` per tick from now on (0: stop)."""
        self.drift_rate = rate
        self.ticks = 0

    def tick(self, ticks: int = 1) -> None:
        """Apply the drift ``ticks`` times (nothing while the rate is zero)."""
        if not self.drift_rate:
            return
        with localcontext() as context:
            context.prec = DRIFT_PRECISION
            factor = (1 + self.drift_rate) ** ticks
            for pair, exact in self._drifted.items():
                self._drifted[pair] = exact * factor
        self.ticks += ticks

    def drift_json(self) -> dict[str, Any]:
        return {"rate": format(self.drift_rate, "f"), "ticks": self.ticks}

    def pairs(self) -> list[str]:
        """Every pair the fake prices: the direct ones and their inverses."""
        found = set(self._direct)
        for pair in self._direct:
            base, quote = _split_pair(pair)
            found.add(f"{quote}-{base}")
        return sorted(found)

    def set_price(self, pair: str, price: Decimal) -> None:
        """Make ``pair`` a direct pair at ``price``; its inverse follows from it."""
        base, quote = _split_pair(pair)
        self._direct.pop(f"{quote}-{base}", None)
        self._drifted.pop(f"{quote}-{base}", None)
        self._direct[pair] = price
        self._drifted[pair] = price

    def reset(self) -> None:
        self._direct = {}
        self._drifted = {}
        for pair, price in self.config.prices.items():
            self.set_price(pair, price)
        self.behaviour = Behaviour()
        self.set_drift(Decimal(0))

    def as_of(self) -> datetime:
        """When the prices were observed: now, or long ago in the ``stale`` mode."""
        now = datetime.now(UTC)
        if self.behaviour.mode is Mode.STALE:
            return now - timedelta(seconds=self.behaviour.stale_seconds)
        return now

    def quote_json(self, pair: str, as_of: datetime) -> dict[str, str]:
        return {"pair": pair, "price": format(self.price(pair), "f"), "as_of": _iso(as_of)}


PRICE_BOOK = web.AppKey("price_book", PriceBook)


def create_prices_app(config: PricesFakeConfig) -> web.Application:
    """The fake price source: its routes and its state."""
    app = control.fake_app(PRICE_BOOK, PriceBook(config), DIALECT, _parse_behaviour)
    app.router.add_get("/v1/prices", _all_prices)
    app.router.add_get("/v1/prices/{pair}", _one_price)
    app.router.add_put("/_control/prices/{pair}", _set_price)
    app.router.add_get("/_control/drift", _get_drift)
    app.router.add_post("/_control/drift", _set_drift)
    app.router.add_post("/_control/tick", _tick)
    return app


async def _all_prices(request: web.Request) -> web.Response:
    book = request.app[PRICE_BOOK]
    book.tick()
    as_of = book.as_of()
    return web.json_response({"prices": [book.quote_json(pair, as_of) for pair in book.pairs()]})


async def _one_price(request: web.Request) -> web.Response:
    book = request.app[PRICE_BOOK]
    pair = _pair(request)
    book.tick()
    return web.json_response(book.quote_json(pair, book.as_of()))


async def _set_price(request: web.Request) -> web.Response:
    book = request.app[PRICE_BOOK]
    pair = _pair(request)
    body = await DIALECT.json_object(request)
    book.set_price(pair, _parse_price(body.get("price")))
    return web.json_response(book.quote_json(pair, datetime.now(UTC)))


async def _get_drift(request: web.Request) -> web.Response:
    return web.json_response(request.app[PRICE_BOOK].drift_json())


async def _set_drift(request: web.Request) -> web.Response:
    book = request.app[PRICE_BOOK]
    body = await DIALECT.json_object(request)
    book.set_drift(_parse_rate(body.get("rate")))
    return web.json_response(book.drift_json())


async def _tick(request: web.Request) -> web.Response:
    book = request.app[PRICE_BOOK]
    body = await DIALECT.json_object(request) if request.can_read_body else {}
    try:
        ticks = control.whole_number(body, "ticks", 1, 1, MAX_TICKS, "a whole number")
    except control.InvalidBehaviour as exc:
        raise _invalid(str(exc)) from None
    book.tick(ticks)
    return web.json_response(book.drift_json())


def _split_pair(pair: str) -> tuple[str, str]:
    match = _PAIR.fullmatch(pair)
    if match is None or match[1] == match[2]:
        raise control.FakeError(404, "unknown_pair", f"{pair!r} is not a pair such as BTC-USDT")
    return match[1], match[2]


def _pair(request: web.Request) -> str:
    pair = request.match_info["pair"].upper()
    _split_pair(pair)
    return pair


def _parse_price(value: object) -> Decimal:
    if not isinstance(value, str) or not _DECIMAL_TEXT.fullmatch(value):
        raise _invalid('"price" must be a decimal string such as "64000.00"')
    try:
        price = Decimal(value)
    except InvalidOperation:
        raise _invalid('"price" must be a decimal string such as "64000.00"') from None
    exponent = price.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    if price <= 0 or price >= MAX_PRICE or -exponent > PRICE_PLACES:
        raise _invalid(
            f'"price" must be above 0, below {MAX_PRICE:f}, '
            f"with at most {PRICE_PLACES} decimal places"
        )
    return price


def _parse_rate(value: object) -> Decimal:
    wrong = f'"rate" must be a decimal string from -{MAX_DRIFT} to {MAX_DRIFT}, such as "0.001"'
    if not isinstance(value, str) or not re.fullmatch(r"-?[0-9]+(?:\.[0-9]+)?", value):
        raise _invalid(wrong)
    rate = Decimal(value)
    exponent = rate.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    if abs(rate) > MAX_DRIFT or -exponent > PRICE_PLACES:
        raise _invalid(wrong)
    return rate


def _parse_behaviour(body: Mapping[str, Any]) -> Behaviour:
    common = control.parse_behaviour(body, tuple(Mode))
    stale_seconds = control.whole_number(
        body,
        "stale_seconds",
        DEFAULT_STALE_SECONDS,
        -(10**9),
        10**9,
        "a whole number of seconds (negative: the source's clock ahead)",
    )
    return Behaviour(common.mode, common.status, common.delay_ms, stale_seconds)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake price source on its own."""
    control.serve(
        argv,
        prog="python -m isolation_harness.reference_app.fakes.prices",
        description="A price-source fake with fixed prices and a mode switch.",
        port=8791,
        build=lambda args: create_prices_app(PricesFakeConfig()),
    )


if __name__ == "__main__":
    main()
