"""Swap use cases on a real PostgreSQL, priced by the real price-source fake over HTTP."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest

from isolation_harness.reference_app.app_keys import SWAP, WALLET
from isolation_harness.reference_app.errors import (
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
from isolation_harness.reference_app.services.swap.domain import Quote, QuoteState
from isolation_harness.reference_app.services.swap.service import SwapService
from isolation_harness.reference_app.services.wallet.domain import PLATFORM_REVENUE, SWAP_DESK
from isolation_harness.reference_app.services.wallet.service import WalletService
from tests.plugins.ledger import funded_user, ledger_sums, system_balance
from tests.plugins.quotes import places, until_expired
from tests.plugins.reference_app import PricesFake, RunningApp, StartApp


@pytest.fixture
def prices(prices_fake: PricesFake) -> PricesFake:
    """The price-source fake the app fixtures already started (reached directly here)."""
    return prices_fake


@pytest.fixture
def book(prices: PricesFake) -> PriceBook:
    """The fake's state: tests set prices and modes on it directly."""
    return prices.book


def prices_url(prices: PricesFake) -> str:
    return prices.url


@pytest.fixture
async def app(start_app: StartApp, prices: PricesFake) -> RunningApp:
    return await start_app(prices_url=prices_url(prices))


@pytest.fixture
def swap(app: RunningApp) -> SwapService:
    return app.app[SWAP]


@pytest.fixture
def wallet(app: RunningApp) -> WalletService:
    return app.app[WALLET]


async def swap_transactions(wallet: WalletService, quote: Quote) -> list[int]:
    async with wallet.db.cursor() as cur:
        await cur.execute(
            "SELECT id FROM wallet.transactions WHERE reference = %s", (f"swap:quote:{quote.id}",)
        )
        return [row[0] for row in await cur.fetchall()]


async def quotes_of(swap: SwapService, user: uuid.UUID) -> int:
    async with swap.db.cursor() as cur:
        await cur.execute("SELECT count(*) FROM swap.quotes WHERE user_id = %s", (str(user),))
        row = await cur.fetchone()
    return int(row[0])


async def balances(wallet: WalletService, user: uuid.UUID) -> dict[str, Decimal]:
    return {b.currency: b.available for b in await wallet.balances(user)}


# -- the quote formula, computed independently with fractions -----------------------------


def expected_terms(
    price: Fraction, amount: str, spread: str, fee_rate: str, sell_places: int, buy_places: int
) -> tuple[Fraction, Fraction, Fraction]:
    """(rate, fee, buy amount): spread and fee against the user, the fee taken from what is
    sold, every rounding in the platform's favour."""
    rate = places(price * (1 - Fraction(spread)), 18)
    fee = places(Fraction(amount) * Fraction(fee_rate), sell_places, up=True)
    buy = places((Fraction(amount) - fee) * rate, buy_places)
    return rate, fee, buy


async def test_quote_at_default_price(swap: SwapService, wallet: WalletService) -> None:
    user = await funded_user(wallet)
    before = datetime.now(UTC)
    quote = await swap.request_quote(user, "BTC", "USDT", Decimal("0.1"))
    # 64000.00 * (1 - 0.005); 0.1 * 0.002 BTC fee; (0.1 - 0.0002) * 63680 USDT
    assert quote.price == Decimal("64000")
    assert quote.rate == Decimal("63680")
    assert quote.fee == Decimal("0.0002")
    assert quote.buy_amount == Decimal("6355.264")
    assert quote.sell_amount == Decimal("0.1")
    assert quote.state is QuoteState.OPEN
    assert quote.pair == "BTC-USDT"
    assert quote.expires_at - quote.created_at == timedelta(seconds=30)
    assert before <= quote.created_at <= datetime.now(UTC)
    assert abs(quote.price_as_of - quote.created_at) < timedelta(seconds=5)
    assert await swap.quote(user, quote.id) == quote


@pytest.mark.parametrize(
    ("sell", "buy", "amount", "direct_pair", "direct_price"),
    [
        ("BTC", "USDT", "0.12345678", "BTC-USDT", "64123.45"),
        ("USDT", "BTC", "1000", "BTC-USDT", "64000.00"),  # an inverse, exact
        ("ETH", "BTC", "0.33333333", "BTC-ETH", "19.87654321"),  # an inverse, rounded
        ("USD", "ETH", "12.34", "ETH-USD", "3333.33"),
        ("BTC", "USD", "0.00000777", "BTC-USD", "61234.5678"),  # the fee rounds up to 1e-8
    ],
)
@pytest.mark.parametrize(("spread", "fee_rate"), [("0.005", "0.002"), ("0.0123", "0.0037")])
async def test_quote_math_is_exact(
    start_app: StartApp,
    prices: PricesFake,
    book: PriceBook,
    sell: str,
    buy: str,
    amount: str,
    direct_pair: str,
    direct_price: str,
    spread: str,
    fee_rate: str,
) -> None:
    app = await start_app(prices_url=prices_url(prices), swap_spread=spread, swap_fee_rate=fee_rate)
    swap, wallet = app.app[SWAP], app.app[WALLET]
    book.set_price(direct_pair, Decimal(direct_price))
    given = Fraction(direct_price)
    # the fake's inverse: 1 / price, half-even at 18 places (as Python rounds a Fraction)
    price = given if direct_pair == f"{sell}-{buy}" else round(1 / given, 18)
    places_of = {"BTC": 8, "ETH": 8, "USDT": 6, "USD": 2}

    quote = await swap.request_quote(await funded_user(wallet), sell, buy, Decimal(amount))

    rate, fee, bought = expected_terms(
        price, amount, spread, fee_rate, places_of[sell], places_of[buy]
    )
    assert Fraction(quote.price) == price
    assert Fraction(quote.rate) == rate
    assert Fraction(quote.fee) == fee
    assert Fraction(quote.buy_amount) == bought
    assert bought > 0
    assert rate < price  # the spread is against the user
    # what the spread earns: the amount at the market price, rounded alike, less the bought
    at_price = places((Fraction(amount) - fee) * price, places_of[buy])
    assert Fraction(quote.spread_amount) == at_price - bought >= 0


async def test_execute_moves_exactly_the_quoted_amounts(
    swap: SwapService, wallet: WalletService
) -> None:
    user = await funded_user(wallet, BTC="1")
    revenue_before = await system_balance(wallet, PLATFORM_REVENUE, "BTC")
    revenue_usdt = await system_balance(wallet, PLATFORM_REVENUE, "USDT")
    desk_btc, desk_usdt = (
        await system_balance(wallet, SWAP_DESK, "BTC"),
        await system_balance(wallet, SWAP_DESK, "USDT"),
    )
    quote = await swap.request_quote(user, "BTC", "USDT", Decimal("0.25"))

    execution = await swap.execute_quote(user, quote.id, "key-1")

    assert not execution.replayed
    done = execution.quote
    assert done.state is QuoteState.EXECUTED
    assert done.transaction_id is not None
    assert done.executed_at is not None
    assert await balances(wallet, user) == {
        "BTC": Decimal("1") - quote.sell_amount,
        "USDT": quote.buy_amount,
    }
    assert await system_balance(wallet, PLATFORM_REVENUE, "BTC") == revenue_before + quote.fee
    # the spread is revenue too, in the bought currency, paid by the desk
    assert quote.spread_amount > 0
    assert await system_balance(wallet, PLATFORM_REVENUE, "USDT") == (
        revenue_usdt + quote.spread_amount
    )
    assert await system_balance(wallet, SWAP_DESK, "BTC") == (
        desk_btc + quote.sell_amount - quote.fee
    )
    assert await system_balance(wallet, SWAP_DESK, "USDT") == (
        desk_usdt - quote.buy_amount - quote.spread_amount
    )
    assert await swap_transactions(wallet, quote) == [done.transaction_id]
    assert all(total == 0 for total in (await ledger_sums(wallet)).values())
    assert await swap.quote(user, quote.id) == done


async def test_execute_twice_is_idempotent(swap: SwapService, wallet: WalletService) -> None:
    user = await funded_user(wallet, ETH="2")
    quote = await swap.request_quote(user, "ETH", "BTC", Decimal("1.5"))
    first = await swap.execute_quote(user, quote.id, "key-1")
    again = await swap.execute_quote(user, quote.id, "key-2")
    assert again.replayed
    assert again.quote == first.quote
    assert await balances(wallet, user) == {
        "ETH": Decimal("0.5"),
        "BTC": quote.buy_amount,
    }
    assert await swap_transactions(wallet, quote) == [first.quote.transaction_id]


async def test_concurrent_executes_execute_once(swap: SwapService, wallet: WalletService) -> None:
    user = await funded_user(wallet, USDT="5000")
    quote = await swap.request_quote(user, "USDT", "ETH", Decimal("5000"))

    executions = await asyncio.gather(
        *(swap.execute_quote(user, quote.id, f"key-{n}") for n in range(12))
    )

    assert {e.quote.transaction_id for e in executions} == {executions[0].quote.transaction_id}
    assert [e.replayed for e in executions].count(False) == 1
    assert all(e.quote.state is QuoteState.EXECUTED for e in executions)
    assert await balances(wallet, user) == {"USDT": Decimal(0), "ETH": quote.buy_amount}
    assert len(await swap_transactions(wallet, quote)) == 1
    assert all(total == 0 for total in (await ledger_sums(wallet)).values())


async def test_expired_quote_is_refused_and_nothing_moves(
    start_app: StartApp, prices: PricesFake
) -> None:
    app = await start_app(prices_url=prices_url(prices), quote_ttl_seconds=0.2)
    swap, wallet = app.app[SWAP], app.app[WALLET]
    user = await funded_user(wallet, BTC="1")
    quote = await swap.request_quote(user, "BTC", "ETH", Decimal("0.5"))
    assert quote.expires_at - quote.created_at == timedelta(seconds=0.2)
    await until_expired(quote)
    assert (await swap.quote(user, quote.id)).state_at(datetime.now(UTC)) is QuoteState.EXPIRED

    for key in ("key-1", "key-2"):
        with pytest.raises(Gone) as refused:
            await swap.execute_quote(user, quote.id, key)
        assert refused.value.code == "quote_expired"
        assert refused.value.service == "swap"

    assert (await swap.quote(user, quote.id)).state is QuoteState.EXPIRED
    assert await balances(wallet, user) == {"BTC": Decimal("1")}
    assert await swap_transactions(wallet, quote) == []


async def test_execution_interrupted_after_the_wallet_completes_on_retry(
    start_app: StartApp, prices: PricesFake
) -> None:
    """Steps 1 and 2 done (claimed, money moved), step 3 lost: a retry, even after the
    deadline, marks the quote executed with the same ledger transaction, moving nothing."""
    app = await start_app(prices_url=prices_url(prices), quote_ttl_seconds=0.2)
    swap, wallet = app.app[SWAP], app.app[WALLET]
    user = await funded_user(wallet, BTC="1")
    quote = await swap.request_quote(user, "BTC", "USDT", Decimal("0.4"))
    async with swap.db.cursor() as cur:
        await cur.execute(
            "UPDATE swap.quotes SET state = 'executing' WHERE id = %s", (str(quote.id),)
        )
    posted = await wallet.exchange(
        user,
        sell=("BTC", quote.sell_amount),
        buy=("USDT", quote.buy_amount),
        fee=quote.fee,
        idempotency_key=quote.wallet_key,
        reference=quote.reference,
    )
    await until_expired(quote)

    execution = await swap.execute_quote(user, quote.id, "retry")

    assert execution.replayed
    assert execution.quote.state is QuoteState.EXECUTED
    assert execution.quote.transaction_id == posted.transaction_id
    assert await balances(wallet, user) == {"BTC": Decimal("0.6"), "USDT": quote.buy_amount}
    assert await swap_transactions(wallet, quote) == [posted.transaction_id]


async def test_insufficient_funds_leaves_the_quote_open(
    swap: SwapService, wallet: WalletService
) -> None:
    user = await funded_user(wallet, BTC="0.05")
    quote = await swap.request_quote(user, "BTC", "USDT", Decimal("0.1"))
    with pytest.raises(InsufficientFunds):
        await swap.execute_quote(user, quote.id, "key-1")
    assert (await swap.quote(user, quote.id)).state is QuoteState.OPEN
    assert await balances(wallet, user) == {"BTC": Decimal("0.05")}

    await wallet.credit(user, "BTC", Decimal("0.05"), idempotency_key=f"more-{user}")
    execution = await swap.execute_quote(user, quote.id, "key-2")
    assert execution.quote.state is QuoteState.EXECUTED
    assert await balances(wallet, user) == {"BTC": Decimal(0), "USDT": quote.buy_amount}


async def test_someone_elses_quote_is_not_found(swap: SwapService, wallet: WalletService) -> None:
    owner = await funded_user(wallet, BTC="1")
    stranger = await funded_user(wallet, BTC="1")
    quote = await swap.request_quote(owner, "BTC", "USDT", Decimal("0.1"))
    with pytest.raises(NotFound):
        await swap.quote(stranger, quote.id)
    with pytest.raises(NotFound):
        await swap.execute_quote(stranger, quote.id, "key-1")
    with pytest.raises(NotFound):
        await swap.execute_quote(owner, uuid.uuid4(), "key-1")
    assert (await swap.quote(owner, quote.id)).state is QuoteState.OPEN
    assert await balances(wallet, stranger) == {"BTC": Decimal("1")}


@pytest.mark.parametrize(
    ("behaviour", "code", "cause"),
    [
        (Behaviour(Mode.ERROR, status=503), "price_source_unavailable", "HTTP 503"),
        (Behaviour(Mode.ERROR, status=500), "price_source_unavailable", "HTTP 500"),
        (Behaviour(Mode.SLOW, delay_ms=3000), "price_source_unavailable", "no answer within 1.5 s"),
        (Behaviour(Mode.MALFORMED), "price_source_unavailable", "malformed answer"),
        (Behaviour(Mode.STALE, stale_seconds=600), "stale_price", "s old"),
    ],
    ids=["503", "500", "slow", "malformed", "stale"],
)
async def test_price_source_trouble_is_a_503_naming_the_cause(
    start_app: StartApp,
    prices: PricesFake,
    book: PriceBook,
    behaviour: Behaviour,
    code: str,
    cause: str,
) -> None:
    # a limit the fake (in this process, beside the rest of the suite) always answers
    # within when it is not told to be slow: at 0.3 s a malformed answer once came too late
    app = await start_app(prices_url=prices_url(prices), prices_timeout=1.5)
    swap, wallet = app.app[SWAP], app.app[WALLET]
    user = await funded_user(wallet, BTC="1")
    book.behaviour = behaviour
    with pytest.raises(DependencyUnavailable) as failed:
        await swap.request_quote(user, "BTC", "USDT", Decimal("0.1"))
    assert (failed.value.status, failed.value.code, failed.value.service) == (503, code, "swap")
    assert cause in failed.value.message
    assert await quotes_of(swap, user) == 0

    book.behaviour = Behaviour()  # and it recovers as soon as the source does
    await swap.request_quote(user, "BTC", "USDT", Decimal("0.1"))
    assert await quotes_of(swap, user) == 1


async def test_price_source_down_is_a_503(start_app: StartApp) -> None:
    app = await start_app(prices_url="http://127.0.0.1:1")  # nothing listens there
    swap, wallet = app.app[SWAP], app.app[WALLET]
    user = await funded_user(wallet)
    with pytest.raises(DependencyUnavailable) as failed:
        await swap.request_quote(user, "ETH", "USD", Decimal("1"))
    assert failed.value.code == "price_source_unavailable"
    assert "cannot reach it" in failed.value.message
    assert await quotes_of(swap, user) == 0
