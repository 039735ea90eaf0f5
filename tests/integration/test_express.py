"""Express buy on a real PostgreSQL, priced by the real price-source fake over HTTP.

The platform's liquidity is one account per currency, shared by every test on this worker's
database; a test that needs a known level buys a coin of its own (a currency made up for it,
priced by the fake), whose liquidity starts at zero.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from isolation_harness.reference_app.app_keys import EXPRESS, WALLET
from isolation_harness.reference_app.errors import (
    BadRequest,
    Conflict,
    DependencyUnavailable,
    Gone,
    InsufficientFunds,
    NotFound,
)
from isolation_harness.reference_app.fakes.prices import (
    Behaviour,
    Mode,
    PriceBook,
)
from isolation_harness.reference_app.money import DEFAULT_CURRENCIES
from isolation_harness.reference_app.services.express.domain import (
    OrderState,
    Quote,
    QuoteState,
)
from isolation_harness.reference_app.services.express.service import ExpressService
from isolation_harness.reference_app.services.wallet.domain import (
    PLATFORM_LIQUIDITY,
    PLATFORM_REVENUE,
    TREASURY,
)
from isolation_harness.reference_app.services.wallet.service import WalletService
from isolation_harness.reference_app.settings import AppSettings
from tests.plugins.ledger import funded_user, ledger_sums, system_balance
from tests.plugins.quotes import places, until_expired
from tests.plugins.reference_app import PricesFake, RunningApp, StartApp
from tests.plugins.reference_app import PricesFake as PluginPricesFake

COIN_PRICE = Decimal("250.00")  # a coin's price in USDT


@pytest.fixture
def prices(prices_fake: PricesFake) -> PricesFake:
    """The price-source fake the app fixtures already started (reached directly here)."""
    return prices_fake


@pytest.fixture
def book(prices: PricesFake) -> PriceBook:
    """The fake's state: tests set prices and modes on it directly."""
    return prices.book


@pytest.fixture
def coin(book: PriceBook) -> str:
    """A currency of this test's own (8 decimal places), priced in USDT; no liquidity yet."""
    code = f"X{secrets.token_hex(3).upper()}"
    book.set_price(f"{code}-USDT", COIN_PRICE)
    return code


def prices_url(prices: PricesFake) -> str:
    return prices.url


@pytest.fixture
async def app(start_app: StartApp, prices: PricesFake, coin: str) -> RunningApp:
    return await start_app(
        prices_url=prices_url(prices), currencies={**DEFAULT_CURRENCIES, coin: 8}
    )


@pytest.fixture
def express(app: RunningApp) -> ExpressService:
    return app.app[EXPRESS]


@pytest.fixture
def wallet(app: RunningApp) -> WalletService:
    return app.app[WALLET]


async def ledger_size(wallet: WalletService) -> tuple[int, int, int]:
    """(transactions, entries, accounts): what a movement that moves nothing leaves alone."""
    async with wallet.db.cursor() as cur:
        await cur.execute(
            "SELECT (SELECT count(*) FROM wallet.transactions), "
            "(SELECT count(*) FROM wallet.entries), (SELECT count(*) FROM wallet.accounts)"
        )
        row = await cur.fetchone()
    return int(row[0]), int(row[1]), int(row[2])


async def order_transactions(wallet: WalletService, order_id: uuid.UUID) -> list[int]:
    async with wallet.db.cursor() as cur:
        await cur.execute(
            "SELECT id FROM wallet.transactions WHERE reference = %s",
            (f"express:order:{order_id}",),
        )
        return [row[0] for row in await cur.fetchall()]


async def balances(wallet: WalletService, user: uuid.UUID) -> dict[str, Decimal]:
    return {b.currency: b.available for b in await wallet.balances(user)}


async def quotes_of(express: ExpressService, user: uuid.UUID) -> int:
    async with express.db.cursor() as cur:
        await cur.execute("SELECT count(*) FROM express.quotes WHERE user_id = %s", (str(user),))
        row = await cur.fetchone()
    return int(row[0])


async def orders_of(express: ExpressService, user: uuid.UUID) -> int:
    async with express.db.cursor() as cur:
        await cur.execute("SELECT count(*) FROM express.orders WHERE user_id = %s", (str(user),))
        row = await cur.fetchone()
    return int(row[0])


# -- the quote formula, computed independently with fractions -----------------------------


def expected_terms(
    price: Fraction, amount: str, markup: str, pay_places: int
) -> tuple[Fraction, Fraction, Fraction, Fraction]:
    """(rate, pay amount, cost, fee): the markup against the user, every rounding up (in
    the platform's favour)."""
    rate = places(price * (1 + Fraction(markup)), 18, up=True)
    pay = places(Fraction(amount) * rate, pay_places, up=True)
    cost = places(Fraction(amount) * price, pay_places, up=True)
    return rate, pay, cost, pay - cost


async def test_quote_at_default_price(express: ExpressService, wallet: WalletService) -> None:
    user = await funded_user(wallet)
    before = datetime.now(UTC)
    quote = await express.request_quote(user, "BTC", "USDT", Decimal("0.01"))
    # 64000.00 * 1.01 = 64640; 0.01 BTC costs 640 USDT at market, 646.4 with the markup
    assert (quote.price, quote.markup, quote.rate) == (
        Decimal("64000"), AppSettings.model_fields["express_markup"].default, Decimal("64640"),
    )  # fmt: skip
    assert (quote.buy_amount, quote.pay_amount) == (Decimal("0.01"), Decimal("646.4"))
    assert (quote.cost, quote.fee) == (Decimal("640"), Decimal("6.4"))
    assert quote.state is QuoteState.OPEN
    assert quote.pair == "BTC-USDT"
    assert quote.expires_at - quote.created_at == timedelta(
        seconds=AppSettings.model_fields["express_quote_ttl_seconds"].default
    )
    assert before <= quote.created_at <= datetime.now(UTC)
    assert abs(quote.price_as_of - quote.created_at) < timedelta(seconds=5)
    assert await express.quote(user, quote.id) == quote


@pytest.mark.parametrize(
    ("buy", "pay", "amount", "direct_pair", "direct_price"),
    [
        ("BTC", "USDT", "0.12345678", "BTC-USDT", "64123.45"),
        ("ETH", "BTC", "0.33333333", "BTC-ETH", "19.87654321"),  # an inverse, rounded
        ("USDT", "ETH", "1234.567891", "ETH-USDT", "3210.12"),  # an inverse
        ("ETH", "USD", "0.00000777", "ETH-USD", "3333.33"),  # the cost rounds up to a cent
        ("USD", "USDT", "99.99", "USDT-USD", "0.9999"),  # an inverse, long
    ],
)
@pytest.mark.parametrize("markup", ["0.01", "0.0237", "0"])
async def test_quote_math_is_exact(
    express: ExpressService,
    wallet: WalletService,
    book: PriceBook,
    buy: str,
    pay: str,
    amount: str,
    direct_pair: str,
    direct_price: str,
    markup: str,
) -> None:
    express.markup = Decimal(markup)
    book.set_price(direct_pair, Decimal(direct_price))
    given = Fraction(direct_price)
    # the fake's inverse: 1 / price, half-even at 18 places (as Python rounds a Fraction)
    price = given if direct_pair == f"{buy}-{pay}" else round(1 / given, 18)

    quote = await express.request_quote(await funded_user(wallet), buy, pay, Decimal(amount))

    rate, paid, cost, fee = expected_terms(price, amount, markup, DEFAULT_CURRENCIES[pay])
    assert Fraction(quote.price) == price
    assert Fraction(quote.markup) == Fraction(markup)
    assert Fraction(quote.rate) == rate
    assert Fraction(quote.pay_amount) == paid
    assert Fraction(quote.cost) == cost
    assert Fraction(quote.fee) == fee
    assert quote.buy_amount == Decimal(amount)
    assert paid >= Fraction(amount) * price * (1 + Fraction(markup))  # against the user
    assert fee >= 0
    assert cost >= Fraction(amount) * price  # liquidity is paid at least the market value


@pytest.mark.parametrize(
    ("buy", "pay", "amount", "code"),
    [
        ("ETH", "BTC", "0.00000001", "amount_too_small"),  # worth 5e-10 BTC
        ("BTC", "USDT", "100000000000", "amount_too_large"),  # 6.4e15 USDT
    ],
)
async def test_unquotable_amounts_are_refused(
    express: ExpressService, wallet: WalletService, buy: str, pay: str, amount: str, code: str
) -> None:
    user = await funded_user(wallet)
    with pytest.raises(BadRequest) as refused:
        await express.request_quote(user, buy, pay, Decimal(amount))
    assert (refused.value.code, refused.value.service) == (code, "express")
    assert await quotes_of(express, user) == 0


# -- orders -------------------------------------------------------------------------------


@pytest.mark.parametrize("markup", ["0.01", "0"])
async def test_order_moves_exactly_the_quoted_amounts(
    express: ExpressService, wallet: WalletService, coin: str, markup: str
) -> None:
    express.markup = Decimal(markup)
    await express.fund_liquidity(coin, Decimal("10"), f"seed-{coin}")
    user = await funded_user(wallet, USDT="1000")
    revenue = await system_balance(wallet, PLATFORM_REVENUE, "USDT")
    liquidity_usdt = await system_balance(wallet, PLATFORM_LIQUIDITY, "USDT")
    quote = await express.request_quote(user, coin, "USDT", Decimal("2.5"))
    assert quote.pay_amount == Decimal("2.5") * COIN_PRICE * (1 + Decimal(markup))

    placement = await express.place_order(user, quote.id, "key-1")

    assert not placement.replayed
    order = placement.order
    assert order.state is OrderState.FILLED
    assert order.quote.id == quote.id
    assert order.transaction_id is not None
    assert order.filled_at is not None
    assert order.reason is None
    assert await balances(wallet, user) == {
        "USDT": Decimal("1000") - quote.pay_amount,
        coin: Decimal("2.5"),
    }
    assert await system_balance(wallet, PLATFORM_LIQUIDITY, coin) == Decimal("7.5")
    assert await system_balance(wallet, PLATFORM_LIQUIDITY, "USDT") == (liquidity_usdt + quote.cost)
    assert await system_balance(wallet, PLATFORM_REVENUE, "USDT") == revenue + quote.fee
    assert await order_transactions(wallet, order.id) == [order.transaction_id]
    assert all(total == 0 for total in (await ledger_sums(wallet)).values())
    assert (await express.quote(user, quote.id)).state is QuoteState.ORDERED
    assert await express.order(user, order.id) == order
    assert (await express.liquidity())[coin] == Decimal("7.5")


async def test_short_liquidity_is_refused_and_nothing_moves(
    express: ExpressService, wallet: WalletService, coin: str
) -> None:
    await express.fund_liquidity(coin, Decimal("0.5"), f"seed-{coin}")
    rich = await funded_user(wallet, USDT="1000")
    poor = await funded_user(wallet, USDT="1")
    quotes = {
        user: await express.request_quote(user, coin, "USDT", Decimal("0.6"))
        for user in (rich, poor)
    }
    ledger = await ledger_size(wallet)

    # short of liquidity only, and short of both: liquidity is named first either way
    for user, quote in quotes.items():
        with pytest.raises(Conflict) as refused:
            await express.place_order(user, quote.id, "key-1")
        assert (refused.value.code, refused.value.status) == ("insufficient_liquidity", 409)
        assert str(COIN_PRICE) not in refused.value.message

    assert await ledger_size(wallet) == ledger
    assert await balances(wallet, rich) == {"USDT": Decimal("1000")}
    assert await balances(wallet, poor) == {"USDT": Decimal("1")}
    assert await system_balance(wallet, PLATFORM_LIQUIDITY, coin) == Decimal("0.5")
    async with express.db.cursor() as cur:
        await cur.execute(
            "SELECT state, reason, transaction_id FROM express.orders WHERE quote_id IN %s",
            (tuple(str(q.id) for q in quotes.values()),),
        )
        rows = await cur.fetchall()
    assert rows == [("rejected", "insufficient_liquidity", None)] * 2


async def test_user_short_of_funds_is_refused_and_nothing_moves(
    express: ExpressService, wallet: WalletService, coin: str
) -> None:
    await express.fund_liquidity(coin, Decimal("5"), f"seed-{coin}")
    user = await funded_user(wallet, USDT="100")
    quote = await express.request_quote(user, coin, "USDT", Decimal("1"))
    ledger = await ledger_size(wallet)

    with pytest.raises(InsufficientFunds) as refused:
        await express.place_order(user, quote.id, "key-1")

    assert (refused.value.code, refused.value.status) == ("insufficient_funds", 409)
    assert await ledger_size(wallet) == ledger
    assert await balances(wallet, user) == {"USDT": Decimal("100")}
    assert await system_balance(wallet, PLATFORM_LIQUIDITY, coin) == Decimal("5")
    async with express.db.cursor() as cur:
        await cur.execute("SELECT id FROM express.orders WHERE quote_id = %s", (str(quote.id),))
        (order_id,) = await cur.fetchone()
    rejected = await express.order(user, uuid.UUID(str(order_id)))
    assert (rejected.state, rejected.reason) == (OrderState.REJECTED, "insufficient_funds")
    assert rejected.transaction_id is None


async def test_concurrent_orders_never_overdraw_the_liquidity(
    express: ExpressService, wallet: WalletService, coin: str
) -> None:
    await express.fund_liquidity(coin, Decimal("1"), f"seed-{coin}")
    users = [await funded_user(wallet, USDT="100") for _ in range(12)]
    quotes = [await express.request_quote(u, coin, "USDT", Decimal("0.3")) for u in users]

    async def place(user: uuid.UUID, quote: Quote) -> str:
        try:
            await express.place_order(user, quote.id, f"key-{quote.id}")
        except Conflict as exc:
            return exc.code
        return "filled"

    outcomes = await asyncio.gather(*(place(u, q) for u, q in zip(users, quotes, strict=True)))

    assert sorted(outcomes) == ["filled"] * 3 + ["insufficient_liquidity"] * 9  # 1 // 0.3
    results = [outcome == "filled" for outcome in outcomes]
    assert await system_balance(wallet, PLATFORM_LIQUIDITY, coin) == Decimal("0.1")
    bought = [(await balances(wallet, u)).get(coin, Decimal(0)) for u in users]
    assert sorted(bought) == [Decimal(0)] * 9 + [Decimal("0.3")] * 3
    for user, quote, filled in zip(users, quotes, results, strict=True):
        expected = Decimal("100") - quote.pay_amount if filled else Decimal("100")
        assert (await balances(wallet, user))["USDT"] == expected
    assert all(total == 0 for total in (await ledger_sums(wallet)).values())


async def test_order_is_idempotent(
    express: ExpressService, wallet: WalletService, coin: str
) -> None:
    await express.fund_liquidity(coin, Decimal("5"), f"seed-{coin}")
    user = await funded_user(wallet, USDT="1000")
    quote = await express.request_quote(user, coin, "USDT", Decimal("1"))
    other = await express.request_quote(user, coin, "USDT", Decimal("1"))

    first = await express.place_order(user, quote.id, "key-1")
    again = await express.place_order(user, quote.id, "key-1")
    other_key = await express.place_order(user, quote.id, "key-2")

    assert not first.replayed
    assert again.replayed
    assert other_key.replayed
    assert again.order == first.order == other_key.order
    with pytest.raises(Conflict) as reused:  # the key of another quote's order
        await express.place_order(user, other.id, "key-1")
    assert reused.value.code == "idempotency_key_reused"
    assert (await express.quote(user, other.id)).state is QuoteState.OPEN
    assert await order_transactions(wallet, first.order.id) == [first.order.transaction_id]
    assert await balances(wallet, user) == {"USDT": Decimal("1000") - quote.pay_amount, coin: 1}
    assert await orders_of(express, user) == 1


async def test_concurrent_orders_on_one_quote_fill_once(
    express: ExpressService, wallet: WalletService, coin: str
) -> None:
    await express.fund_liquidity(coin, Decimal("5"), f"seed-{coin}")
    user = await funded_user(wallet, USDT="1000")
    quote = await express.request_quote(user, coin, "USDT", Decimal("2"))

    placements = await asyncio.gather(
        *(express.place_order(user, quote.id, f"key-{n}") for n in range(12))
    )

    assert {p.order.id for p in placements} == {placements[0].order.id}
    assert [p.replayed for p in placements].count(False) == 1
    assert all(p.order.state is OrderState.FILLED for p in placements)
    assert await order_transactions(wallet, placements[0].order.id) == [
        placements[0].order.transaction_id
    ]
    assert await balances(wallet, user) == {"USDT": Decimal("1000") - quote.pay_amount, coin: 2}
    assert await system_balance(wallet, PLATFORM_LIQUIDITY, coin) == Decimal("3")


async def test_expired_quote_is_refused_and_nothing_moves(
    express: ExpressService, wallet: WalletService, coin: str
) -> None:
    express.quote_ttl = timedelta(seconds=0.2)
    await express.fund_liquidity(coin, Decimal("5"), f"seed-{coin}")
    user = await funded_user(wallet, USDT="1000")
    quote = await express.request_quote(user, coin, "USDT", Decimal("1"))
    assert quote.expires_at - quote.created_at == timedelta(seconds=0.2)
    await until_expired(quote)
    assert (await express.quote(user, quote.id)).state_at(datetime.now(UTC)) is QuoteState.EXPIRED
    ledger = await ledger_size(wallet)

    for key in ("key-1", "key-2"):
        with pytest.raises(Gone) as refused:
            await express.place_order(user, quote.id, key)
        assert (refused.value.code, refused.value.service) == ("quote_expired", "express")

    assert (await express.quote(user, quote.id)).state is QuoteState.EXPIRED
    assert await ledger_size(wallet) == ledger
    assert await balances(wallet, user) == {"USDT": Decimal("1000")}
    assert await orders_of(express, user) == 0


async def test_a_refused_order_is_retried_until_the_deadline(
    express: ExpressService, wallet: WalletService, coin: str
) -> None:
    user = await funded_user(wallet, USDT="1000")
    quote = await express.request_quote(user, coin, "USDT", Decimal("1"))
    express.quote_ttl = timedelta(seconds=0.3)
    late = await express.request_quote(user, coin, "USDT", Decimal("1"))
    for q in (quote, late):
        with pytest.raises(Conflict, match="liquidity"):
            await express.place_order(user, q.id, f"key-{q.id}")

    await express.fund_liquidity(coin, Decimal("1"), f"seed-{coin}")
    retried = await express.place_order(user, quote.id, "another-key")
    assert not retried.replayed
    assert retried.order.state is OrderState.FILLED
    assert retried.order.reason is None

    await until_expired(late)
    await express.fund_liquidity(coin, Decimal("1"), f"more-{coin}")
    with pytest.raises(Gone):
        await express.place_order(user, late.id, f"key-{late.id}")
    assert await balances(wallet, user) == {"USDT": Decimal("1000") - quote.pay_amount, coin: 1}
    assert await system_balance(wallet, PLATFORM_LIQUIDITY, coin) == Decimal("1")


async def test_interrupted_order_completes_on_retry_after_the_deadline(
    express: ExpressService, wallet: WalletService, coin: str
) -> None:
    """Steps 1 and 2 done (placed, money moved), step 3 lost: a retry, even after the
    deadline, marks the order filled with the same ledger transaction, moving nothing."""
    express.quote_ttl = timedelta(seconds=0.2)
    await express.fund_liquidity(coin, Decimal("5"), f"seed-{coin}")
    user = await funded_user(wallet, USDT="1000")
    quote = await express.request_quote(user, coin, "USDT", Decimal("1"))
    order_id = uuid.uuid4()
    async with express.db.cursor() as cur:
        await cur.execute(
            "INSERT INTO express.orders (id, quote_id, user_id, idempotency_key, state, "
            "created_at) VALUES (%s, %s, %s, 'key-1', 'pending', now())",
            (str(order_id), str(quote.id), str(user)),
        )
        await cur.execute(
            "UPDATE express.quotes SET state = 'ordered' WHERE id = %s", (str(quote.id),)
        )
    posted = await wallet.buy_from_liquidity(
        user,
        buy=(coin, quote.buy_amount),
        pay=("USDT", quote.pay_amount),
        fee=quote.fee,
        idempotency_key=f"express:order:{order_id}",
        reference=f"express:order:{order_id}",
    )
    await until_expired(quote)

    placement = await express.place_order(user, quote.id, "retry")

    assert placement.replayed
    assert placement.order.id == order_id
    assert placement.order.state is OrderState.FILLED
    assert placement.order.transaction_id == posted.transaction_id
    assert await balances(wallet, user) == {"USDT": Decimal("1000") - quote.pay_amount, coin: 1}
    assert await order_transactions(wallet, order_id) == [posted.transaction_id]


async def test_someone_elses_quote_and_order_are_not_found(
    express: ExpressService, wallet: WalletService, coin: str
) -> None:
    await express.fund_liquidity(coin, Decimal("5"), f"seed-{coin}")
    owner = await funded_user(wallet, USDT="1000")
    stranger = await funded_user(wallet, USDT="1000")
    quote = await express.request_quote(owner, coin, "USDT", Decimal("1"))
    with pytest.raises(NotFound):
        await express.quote(stranger, quote.id)
    with pytest.raises(NotFound) as refused:
        await express.place_order(stranger, quote.id, "key-1")
    assert refused.value.code == "quote_not_found"
    with pytest.raises(NotFound):
        await express.place_order(owner, uuid.uuid4(), "key-1")
    assert (await express.quote(owner, quote.id)).state is QuoteState.OPEN
    assert await orders_of(express, stranger) == 0

    order = (await express.place_order(owner, quote.id, "key-1")).order
    with pytest.raises(NotFound) as hidden:
        await express.order(stranger, order.id)
    assert hidden.value.code == "order_not_found"
    with pytest.raises(NotFound):
        await express.order(owner, uuid.uuid4())
    assert await balances(wallet, stranger) == {"USDT": Decimal("1000")}


@pytest.mark.parametrize(
    ("behaviour", "code", "cause"),
    [
        (Behaviour(Mode.ERROR, status=503), "price_source_unavailable", "HTTP 503"),
        (Behaviour(Mode.SLOW, delay_ms=900), "price_source_unavailable", "no answer within 0.3 s"),
        (Behaviour(Mode.MALFORMED), "price_source_unavailable", "malformed answer"),
        (Behaviour(Mode.STALE, stale_seconds=600), "stale_price", "s old"),
    ],
    ids=["503", "slow", "malformed", "stale"],
)
async def test_a_refused_price_is_a_503_naming_the_cause(
    start_app: StartApp,
    prices: PricesFake,
    book: PriceBook,
    behaviour: Behaviour,
    code: str,
    cause: str,
) -> None:
    app = await start_app(prices_url=prices_url(prices), prices_timeout=0.3)
    express, wallet = app.app[EXPRESS], app.app[WALLET]
    user = await funded_user(wallet)
    book.behaviour = behaviour
    with pytest.raises(DependencyUnavailable) as failed:
        await express.request_quote(user, "BTC", "USDT", Decimal("0.1"))
    assert (failed.value.status, failed.value.code, failed.value.service) == (
        503, code, "express",
    )  # fmt: skip
    assert cause in failed.value.message
    assert await quotes_of(express, user) == 0

    book.behaviour = Behaviour()  # and it recovers as soon as the source does
    await express.request_quote(user, "BTC", "USDT", Decimal("0.1"))
    assert await quotes_of(express, user) == 1


# -- liquidity ----------------------------------------------------------------------------


async def test_funding_moves_treasury_money_into_liquidity_once(
    express: ExpressService, wallet: WalletService, coin: str
) -> None:
    assert (await express.liquidity())[coin] == 0
    treasury = await system_balance(wallet, TREASURY, coin)

    first = await express.fund_liquidity(coin, Decimal("3.5"), "fund-1")
    again = await express.fund_liquidity(coin, Decimal("3.5"), "fund-1")
    with pytest.raises(Conflict) as reused:
        await express.fund_liquidity(coin, Decimal("4"), "fund-1")
    assert reused.value.code == "idempotency_key_reused"
    await express.fund_liquidity(coin, Decimal("1.5"), "fund-2")

    assert not first.replayed
    assert again.replayed
    assert again.transaction_id == first.transaction_id
    levels = await express.liquidity()
    assert levels[coin] == Decimal("5")
    assert set(levels) == {*DEFAULT_CURRENCIES, coin}
    assert await system_balance(wallet, TREASURY, coin) == treasury - Decimal("5")
    assert all(total == 0 for total in (await ledger_sums(wallet)).values())


async def test_expire_quotes_marks_only_open_quotes_past_their_deadline(
    express: ExpressService, wallet: WalletService, coin: str
) -> None:
    await express.fund_liquidity(coin, Decimal("5"), f"seed-{coin}")
    user = await funded_user(wallet, USDT="1000")
    express.quote_ttl = timedelta(seconds=0.2)
    stale = await express.request_quote(user, coin, "USDT", Decimal("1"))
    ordered = await express.request_quote(user, coin, "USDT", Decimal("1"))
    await express.place_order(user, ordered.id, "key-1")
    express.quote_ttl = timedelta(seconds=60)
    fresh = await express.request_quote(user, coin, "USDT", Decimal("1"))
    await until_expired(stale)

    counts = await asyncio.gather(express.expire_quotes(), express.expire_quotes())
    while await express.expire_quotes():  # quotes other tests left behind, in batches
        pass

    assert sum(counts) >= 1
    states = {q.id: (await express.quote(user, q.id)).state for q in (stale, ordered, fresh)}
    assert states == {
        stale.id: QuoteState.EXPIRED,
        ordered.id: QuoteState.ORDERED,
        fresh.id: QuoteState.OPEN,
    }


async def test_a_stale_feed_is_a_503_naming_express(
    start_app: StartApp, prices_fake: PluginPricesFake
) -> None:
    """Through the background's price feed (polling the fake over the ``prices`` link):
    once the prices it holds are stale, express refuses to quote, naming the cause."""
    app = await start_app(price_feed_interval=0.1, price_max_age=1.0)
    express, wallet = app.app[EXPRESS], app.app[WALLET]
    user = await funded_user(wallet)
    await express.request_quote(user, "BTC", "USDT", Decimal("0.01"))

    prices_fake.book.behaviour = Behaviour(Mode.STALE, stale_seconds=600)
    async with asyncio.timeout(5):
        while True:
            try:
                await express.request_quote(user, "BTC", "USDT", Decimal("0.01"))
            except DependencyUnavailable as exc:
                failed = exc
                break
            await asyncio.sleep(0.05)
    assert (failed.status, failed.code, failed.service) == (503, "stale_price", "express")
    assert "s old" in failed.message
    written = await quotes_of(express, user)
    with pytest.raises(DependencyUnavailable):
        await express.request_quote(user, "BTC", "USDT", Decimal("0.01"))
    assert await quotes_of(express, user) == written
