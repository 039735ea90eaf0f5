"""The background service on a real PostgreSQL: the price feed polling the real price fake
through its Toxiproxy link, the expiry jobs, and two apps running them on one database."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from pydantic import ValidationError

from isolation_harness.chaos.toxiproxy.client import Proxy, ToxiproxyClient
from isolation_harness.reference_app.app_keys import DEPOSITS, P2P, SETTINGS, SWAP, WALLET
from isolation_harness.reference_app.services.background.domain import (
    JobName,
    JobOutcome,
    JobStatus,
)
from isolation_harness.reference_app.services.background.service import BackgroundService
from isolation_harness.reference_app.services.background.views import BACKGROUND, JOBS
from isolation_harness.reference_app.services.deposits.domain import Deposit, DepositStatus
from isolation_harness.reference_app.services.p2p.domain import Trade, TradeState
from isolation_harness.reference_app.services.p2p.service import P2PService
from isolation_harness.reference_app.services.swap.domain import Quote, QuoteState
from isolation_harness.reference_app.services.wallet.service import WalletService
from isolation_harness.reference_app.settings import AppSettings
from isolation_harness.topology.ports import free_port
from tests.plugins.ledger import funded_user
from tests.plugins.polling import until
from tests.plugins.reference_app import (
    ADMIN_TOKEN,
    PaymentsFake,
    PricesFake,
    RunningApp,
    StartApp,
)

D = Decimal
QUOTES = "/api/swap/quotes"
EXPRESS_QUOTES = "/api/express/quotes"
#: a feed that polls often and lets a price age one second at most
FAST_FEED: dict[str, Any] = {"price_feed_interval": 0.1, "price_max_age": 1.0}
#: jobs that do not run by themselves during a test (it runs them itself)
QUIET: dict[str, Any] = {
    "expire_deposits_every": 3600.0,
    "expire_quotes_every": 3600.0,
    "expire_trades_every": 3600.0,
    "prune_price_history_every": 3600.0,
}


async def swap_quote(app: RunningApp, token: str, amount: str = "0.1") -> tuple[int, Any]:
    return await app.call(
        "POST", QUOTES, token=token, json={"sell": "BTC", "buy": "USDT", "amount": amount}
    )


def has_express(app: RunningApp) -> bool:
    """Whether the express service's quote endpoint exists (it is being written)."""
    return any(r.canonical == EXPRESS_QUOTES for r in app.app.router.resources())


async def feed_state(app: RunningApp) -> dict[str, Any]:
    status, body = await app.call("GET", "/api/admin/prices", token=ADMIN_TOKEN)
    assert status == 200, body
    return body


def pair_of(state: dict[str, Any], pair: str) -> dict[str, Any]:
    return next(p for p in state["prices"] if p["pair"] == pair)


async def quote_count(app: RunningApp, user: uuid.UUID) -> int:
    async with app.app[SWAP].db.cursor() as cur:
        await cur.execute("SELECT count(*) FROM swap.quotes WHERE user_id = %s", (str(user),))
        row = await cur.fetchone()
    return int(row[0])


# -- the price feed -------------------------------------------------------------------------


async def test_the_feed_polls_through_the_link_and_prices_from_memory(
    start_app: StartApp, prices_fake: PricesFake, toxiproxy: ToxiproxyClient
) -> None:
    app = await start_app(price_feed_interval=0.1, price_max_age=5.0)
    state = await feed_state(app)
    assert (state["feed"], state["interval_seconds"], state["max_age_seconds"]) == (True, 0.1, 5.0)
    # every ordered pair of BTC, ETH, USDT and USD, priced at the first poll (at start)
    assert len(state["prices"]) == 12
    btc = pair_of(state, "BTC-USDT")
    assert (btc["price"], btc["stale"], btc["error"]) == ("64000", False, None)
    assert btc["age_seconds"] < 5
    assert pair_of(state, "USDT-BTC")["price"] == "0.000015625"
    _user, token = await app.new_user()

    await toxiproxy.disable(prices_fake.link.name)
    # the source is cut off, the prices in memory are fresh: swap does not notice
    status, quote = await swap_quote(app, token)
    assert status == 201, quote
    assert quote["price"] == "64000"
    await toxiproxy.enable(prices_fake.link.name)

    async def history() -> list[dict[str, Any]]:
        status, body = await app.call(
            "GET", "/api/admin/prices/BTC-USDT/history?limit=5", token=ADMIN_TOKEN
        )
        assert status == 200, body
        assert body["pair"] == "BTC-USDT"
        return body["prices"] if len(body["prices"]) >= 3 else []

    recorded = await until(history)
    assert len(recorded) <= 5
    assert {r["price"] for r in recorded} == {"64000"}
    as_of = [r["as_of"] for r in recorded]
    assert as_of == sorted(as_of, reverse=True)  # newest first
    assert all(r["fetched_at"] >= r["as_of"] for r in recorded)


async def test_new_prices_reach_quotes_with_the_next_poll(
    start_app: StartApp, prices_fake: PricesFake
) -> None:
    app = await start_app(**FAST_FEED)
    _user, token = await app.new_user()
    await prices_fake.control("POST", "/drift", {"rate": "0.001"})

    async def moved() -> bool:
        return pair_of(await feed_state(app), "BTC-USDT")["price"] != "64000"

    await until(moved)
    status, quote = await swap_quote(app, token)
    assert status == 201, quote
    ticks = (await prices_fake.control("GET", "/drift"))["ticks"]
    # a price the fake gave after some of its ticks: 64000.00 * 1.001 ** k, to the cent
    possible = {
        round(Fraction("64000.00") * Fraction("1.001") ** k, 2) for k in range(1, ticks + 1)
    }
    assert Fraction(quote["price"]) in possible


async def test_a_stopped_source_makes_prices_stale_after_the_max_age(
    start_app: StartApp, prices_fake: PricesFake
) -> None:
    app = await start_app(**FAST_FEED)
    user, token = await app.new_user()
    assert (await swap_quote(app, token))[0] == 201
    await prices_fake.control("POST", "/mode", {"mode": "error", "status": 503})
    stopped = datetime.now(UTC)

    async def refused() -> tuple[int, Any, datetime] | None:
        status, body = await swap_quote(app, token)
        return (status, body, datetime.now(UTC)) if status != 201 else None

    status, body, refused_at = await until(refused)
    assert status == 503, body
    # priced until the last price the source gave was more than the max age old
    last = datetime.fromisoformat(pair_of(await feed_state(app), "BTC-USDT")["as_of"])
    assert last <= stopped
    assert (refused_at - last).total_seconds() > 1.0
    error = body["error"]
    assert (error["service"], error["code"]) == ("swap", "stale_price")
    assert "at most 1 s accepted" in error["message"]
    assert "the last poll failed" in error["message"]
    assert "HTTP 503" in error["message"]
    pair = pair_of(await feed_state(app), "BTC-USDT")
    assert pair["stale"] is True
    assert "HTTP 503" in pair["error"]
    written = await quote_count(app, user)
    assert (await swap_quote(app, token))[0] == 503
    assert await quote_count(app, user) == written  # a refused quote writes nothing

    await prices_fake.control("POST", "/mode", {"mode": "normal"})
    await until(_accepted(app, token))  # and it recovers with the next poll


def _accepted(app: RunningApp, token: str) -> Callable[[], Awaitable[tuple[int, Any] | None]]:
    async def check() -> tuple[int, Any] | None:
        status, body = await swap_quote(app, token)
        return (status, body) if status == 201 else None

    return check


async def test_the_source_reporting_old_prices_is_refused_at_the_next_poll(
    start_app: StartApp, prices_fake: PricesFake
) -> None:
    app = await start_app(price_feed_interval=0.1, price_max_age=30.0)
    _user, token = await app.new_user()
    await prices_fake.control("POST", "/mode", {"mode": "stale", "stale_seconds": 600})

    async def refused() -> Any:
        status, body = await swap_quote(app, token)
        return body if status == 503 else None

    body = await until(refused)
    assert (body["error"]["service"], body["error"]["code"]) == ("swap", "stale_price")
    assert "is 600 s old" in body["error"]["message"]
    assert "the source itself dates it so" in body["error"]["message"]
    state = await feed_state(app)
    assert all(p["stale"] and p["error"] is None for p in state["prices"])

    await prices_fake.control("POST", "/reset")
    await until(_accepted(app, token))


async def test_a_price_dated_ahead_of_the_app_is_never_taken(
    start_app: StartApp, prices_fake: PricesFake
) -> None:
    """A source whose clock runs ahead: its prices are refused at each poll (the feed keeps
    the last good one, which ages out as when polls fail), and nothing is priced on them."""
    app = await start_app(price_feed_interval=0.1, price_max_age=30.0)
    _user, token = await app.new_user()
    await until(_accepted(app, token))
    await prices_fake.control("POST", "/mode", {"mode": "stale", "stale_seconds": -120})

    async def refused_at_poll() -> Any:
        state = await feed_state(app)
        errors = [p["error"] for p in state["prices"]]
        return state if all(e and "ahead of this clock" in e for e in errors) else None

    state = await until(refused_at_poll)
    now = datetime.now(UTC)
    assert all(datetime.fromisoformat(p["as_of"]) <= now for p in state["prices"]), state
    status, body = await swap_quote(app, token)  # on the last good price
    assert status == 201, body
    assert datetime.fromisoformat(body["price_as_of"]) <= now


async def test_no_price_since_start_is_price_unavailable(start_app: StartApp) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    app = await start_app(prices_url=nowhere, price_feed_interval=0.2)
    user, token = await app.new_user()
    status, body = await swap_quote(app, token)
    assert status == 503, body
    error = body["error"]
    assert (error["service"], error["code"]) == ("swap", "price_unavailable")
    assert "no price for BTC-USDT" in error["message"]
    assert "cannot reach it" in error["message"]
    assert await quote_count(app, user) == 0
    state = await feed_state(app)
    assert state["last_poll"]["priced"] == 0
    assert state["last_poll"]["failed"] == 12
    assert all(p["price"] is None and p["stale"] for p in state["prices"])
    assert all("cannot reach it" in p["error"] for p in state["prices"])
    if has_express(app):
        status, body = await app.call(
            "POST", EXPRESS_QUOTES, token=token,
            json={"buy": "BTC", "pay": "USDT", "amount": "0.01"},
        )  # fmt: skip
        assert status == 503, body
        assert (body["error"]["service"], body["error"]["code"]) == ("express", "price_unavailable")


async def test_without_a_feed_every_quote_asks_the_source(
    start_app: StartApp, prices_fake: PricesFake
) -> None:
    app = await start_app(price_feed_interval=None)
    _user, token = await app.new_user()
    prices_fake.book.set_price("BTC-USDT", D("50000.00"))
    status, quote = await swap_quote(app, token)
    assert (status, quote["price"]) == (201, "50000")
    state = await feed_state(app)
    assert (state["feed"], state["prices"]) == (False, [])


# -- the expiry jobs ------------------------------------------------------------------------


async def movements(wallet: WalletService, trade: Trade) -> list[str]:
    async with wallet.db.cursor() as cur:
        await cur.execute(
            "SELECT kind FROM wallet.transactions WHERE reference = %s ORDER BY id",
            (trade.escrow_reference,),
        )
        return [row[0] for row in await cur.fetchall()]


async def escrow_of(wallet: WalletService, user: uuid.UUID) -> tuple[Decimal, Decimal]:
    found = await wallet.balance(user, "BTC")
    return found.available, found.escrow


async def quote_state(app: RunningApp, quote: Quote) -> QuoteState:
    """The state written down (not the one a reader is shown)."""
    return (await app.app[SWAP].quote(quote.user_id, quote.id)).state


async def make_deposits(app: RunningApp, user: uuid.UUID, count: int, tag: str) -> list[Deposit]:
    made = []
    for n in range(count):
        deposit, _ = await app.app[DEPOSITS].create_deposit(user, "BTC", D("0.1"), f"{tag}-{n}")
        made.append(deposit)
    return made


async def open_trades(
    p2p: P2PService, seller: uuid.UUID, buyer: uuid.UUID, amounts: list[str]
) -> list[Trade]:
    offer = await p2p.post_offer(
        seller, currency="BTC", fiat="USD", price=D("30000"), amount=D("1"),
        min_amount=D("0.01"), max_amount=D("1"),
    )  # fmt: skip
    trades = []
    for amount in amounts:
        trade, _ = await p2p.open_trade(buyer, offer.id, D(amount), uuid.uuid4().hex)
        trades.append(trade)
    return trades


async def test_deposit_expiry_takes_exactly_the_unpaid_ones_past_the_age(
    start_app: StartApp, payments_fake: PaymentsFake
) -> None:
    app = await start_app(**QUIET)
    background, deposits = app.app[BACKGROUND], app.app[DEPOSITS]
    user = uuid.uuid4()
    early = await make_deposits(app, user, 3, "early")
    assert early[1].provider_payment_id
    assert early[2].provider_payment_id
    await payments_fake.progress(early[1].provider_payment_id, "confirming")
    await payments_fake.progress(early[2].provider_payment_id, "finished", through=True)
    cutoff = max(d.created_at for d in early)
    late = await make_deposits(app, user, 2, "late")
    assert all(d.created_at > cutoff for d in late)
    mine = {d.id for d in early + late}
    age = timedelta(seconds=app.app[SETTINGS].deposit_expiry_seconds)

    expired = await background.expire_unpaid_deposits(cutoff + age)

    assert set(expired) & mine == {early[0].id}
    states = {d.id: (await deposits.deposit(user, d.id)).status for d in early + late}
    assert states == {
        early[0].id: DepositStatus.EXPIRED,
        early[1].id: DepositStatus.CONFIRMING,  # the provider reported on it: not ours
        early[2].id: DepositStatus.FINISHED,
        late[0].id: DepositStatus.WAITING,
        late[1].id: DepositStatus.WAITING,
    }
    assert not set(await background.expire_unpaid_deposits(cutoff + age)) & mine


async def test_quote_expiry_takes_exactly_the_open_ones_past_their_deadline(
    start_app: StartApp,
) -> None:
    app = await start_app(**QUIET)
    background, swap = app.app[BACKGROUND], app.app[SWAP]
    user = await funded_user(app.app[WALLET], BTC="1")
    early = [await swap.request_quote(user, "BTC", "USDT", D("0.1")) for _ in range(3)]
    await swap.execute_quote(user, early[1].id, "exec-1")
    async with swap.db.cursor() as cur:  # an execution under way: claimed, wallet pending
        await cur.execute(
            "UPDATE swap.quotes SET state = 'executing' WHERE id = %s", (str(early[2].id),)
        )
    cutoff = max(q.expires_at for q in early)
    late = [await swap.request_quote(user, "BTC", "USDT", D("0.1")) for _ in range(2)]
    assert all(q.expires_at > cutoff for q in late)
    mine = {q.id for q in early + late}

    expired = await background.expire_quotes(cutoff)

    assert set(expired) & mine == {early[0].id}
    assert [await quote_state(app, q) for q in early + late] == [
        QuoteState.EXPIRED, QuoteState.EXECUTED, QuoteState.EXECUTING,
        QuoteState.OPEN, QuoteState.OPEN,
    ]  # fmt: skip
    assert not set(await background.expire_quotes(cutoff)) & mine


async def test_trade_expiry_takes_the_unpaid_ones_past_their_deadline_and_unlocks_once(
    start_app: StartApp,
) -> None:
    app = await start_app(**QUIET)
    background, p2p, wallet = app.app[BACKGROUND], app.app[P2P], app.app[WALLET]
    seller, buyer = await funded_user(wallet, BTC="1"), await funded_user(wallet)
    unpaid, paid = await open_trades(p2p, seller, buyer, ["0.2", "0.1"])
    await p2p.mark_paid(paid.id, buyer)
    cutoff = max(unpaid.expires_at, paid.expires_at)
    (late,) = await open_trades(p2p, seller, buyer, ["0.3"])
    assert late.expires_at > cutoff
    assert await escrow_of(wallet, seller) == (D("0.4"), D("0.6"))

    expired = await background.expire_trades(cutoff)
    again = await background.expire_trades(cutoff)

    assert set(expired) & {unpaid.id, paid.id, late.id} == {unpaid.id}
    assert not set(again) & {unpaid.id, paid.id, late.id}
    states = [(await p2p.trade(t.id, buyer)).state for t in (unpaid, paid, late)]
    assert states == [TradeState.EXPIRED, TradeState.PAID, TradeState.OPEN]
    assert await movements(wallet, unpaid) == ["escrow_lock", "escrow_unlock"]
    assert await escrow_of(wallet, seller) == (D("0.6"), D("0.4"))


async def test_two_apps_expiring_at_once_expire_each_row_once(
    start_app: StartApp, payments_fake: PaymentsFake
) -> None:
    first, second = await start_app(**QUIET), await start_app(**QUIET)
    wallet, p2p, swap = first.app[WALLET], first.app[P2P], first.app[SWAP]
    services: list[BackgroundService] = [first.app[BACKGROUND], second.app[BACKGROUND]] * 3

    async def each_once(
        run: Callable[[BackgroundService], Awaitable[list[uuid.UUID]]], mine: set[uuid.UUID]
    ) -> None:
        runs = await asyncio.gather(*(run(service) for service in services))
        hits = [set(found) & mine for found in runs]
        assert set().union(*hits) == mine
        assert sum(len(hit) for hit in hits) == len(mine), "a row expired twice"

    # deposits
    deposits = await make_deposits(first, uuid.uuid4(), 6, "race")
    age = timedelta(seconds=first.app[SETTINGS].deposit_expiry_seconds)
    now = max(d.created_at for d in deposits) + age
    await each_once(lambda s: s.expire_unpaid_deposits(now), {d.id for d in deposits})
    # swap quotes
    user = await funded_user(wallet, BTC="1")
    quotes = [await swap.request_quote(user, "BTC", "ETH", D("0.05")) for _ in range(6)]
    deadline = max(q.expires_at for q in quotes)
    await each_once(lambda s: s.expire_quotes(deadline), {q.id for q in quotes})
    # trades: the escrow goes back once per trade
    seller, buyer = await funded_user(wallet, BTC="1"), await funded_user(wallet)
    trades = await open_trades(p2p, seller, buyer, ["0.1", "0.15", "0.2", "0.25"])
    due = max(t.expires_at for t in trades)
    await each_once(lambda s: s.expire_trades(due), {t.id for t in trades})
    for trade in trades:
        assert await movements(wallet, trade) == ["escrow_lock", "escrow_unlock"]
        assert (await p2p.trade(trade.id, buyer)).state is TradeState.EXPIRED
    assert await escrow_of(wallet, seller) == (D("1"), D("0"))


def job(app: RunningApp, name: JobName) -> JobStatus:
    return next(s for s in app.app[JOBS].status() if s.job is name)


async def test_two_apps_running_the_jobs_expire_due_rows_once(
    start_app: StartApp, payments_fake: PaymentsFake
) -> None:
    fast: dict[str, Any] = {
        "deposit_expiry_seconds": 0.3, "quote_ttl_seconds": 0.3, "trade_ttl_seconds": 0.3,
        "expire_deposits_every": 0.05, "expire_quotes_every": 0.05,
        "expire_trades_every": 0.05,
    }  # fmt: skip
    first, second = await start_app(**fast), await start_app(**fast)
    wallet, p2p, swap = first.app[WALLET], first.app[P2P], first.app[SWAP]
    seller, buyer = await funded_user(wallet, BTC="1"), await funded_user(wallet, BTC="1")
    trades = await open_trades(p2p, seller, buyer, ["0.1", "0.2", "0.3"])
    quotes = [await swap.request_quote(buyer, "BTC", "USDT", D("0.1")) for _ in range(3)]
    deposits = await make_deposits(first, buyer, 3, "loop")

    async def all_expired() -> bool:
        trade_states = {(await p2p.trade(t.id, buyer)).state for t in trades}
        quote_states = {await quote_state(first, q) for q in quotes}
        deposit_states = {(await first.app[DEPOSITS].deposit(buyer, d.id)).status for d in deposits}
        return (trade_states, quote_states, deposit_states) == (
            {TradeState.EXPIRED}, {QuoteState.EXPIRED}, {DepositStatus.EXPIRED},
        )  # fmt: skip

    await until(all_expired)
    for trade in trades:
        assert await movements(wallet, trade) == ["escrow_lock", "escrow_unlock"]
    assert await escrow_of(wallet, seller) == (D("1"), D("0"))
    for app in (first, second):
        for name in (JobName.EXPIRE_DEPOSITS, JobName.EXPIRE_QUOTES, JobName.EXPIRE_TRADES):
            status = job(app, name)
            assert status.runs >= 1
            assert status.failures == 0, status.last
    # between them, the two apps expired at least these rows (others' leftovers may add)
    for name, rows in (
        (JobName.EXPIRE_DEPOSITS, deposits), (JobName.EXPIRE_QUOTES, quotes),
        (JobName.EXPIRE_TRADES, trades),
    ):  # fmt: skip
        assert job(first, name).total + job(second, name).total >= len(rows)


async def test_a_failing_tick_is_logged_and_the_loop_goes_on(
    start_app: StartApp,
    links: dict[str, Proxy],
    toxiproxy: ToxiproxyClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="reference_app.background")
    app = await start_app(
        quote_ttl_seconds=0.2, expire_quotes_every=0.05, pool={"acquire_timeout": 0.5}
    )
    user = await funded_user(app.app[WALLET], BTC="1")
    quote = await app.app[SWAP].request_quote(user, "BTC", "USDT", D("0.1"))
    await toxiproxy.disable(links["swap"].name)

    await until(lambda: job(app, JobName.EXPIRE_QUOTES).failures >= 2)
    status, body = await app.call("GET", "/api/admin/jobs", token=ADMIN_TOKEN)
    assert status == 200, body
    listed = next(j for j in body["jobs"] if j["job"] == "expire_quotes")
    assert listed["last_run"]["outcome"] == "failed"
    assert listed["last_run"]["error"].startswith("swap: ")
    assert any(
        "job expire_quotes failed" in r.getMessage() and r.levelno == logging.WARNING
        for r in caplog.records
    )

    await toxiproxy.enable(links["swap"].name)
    failures = job(app, JobName.EXPIRE_QUOTES).failures

    async def expired() -> bool:
        return await quote_state(app, quote) is QuoteState.EXPIRED

    await until(expired)
    after = job(app, JobName.EXPIRE_QUOTES)
    assert after.last_ok is not None
    assert after.last_ok.outcome is JobOutcome.OK
    assert after.runs > failures  # the loop ran on after its failures


async def test_old_price_history_is_pruned(start_app: StartApp) -> None:
    app = await start_app(price_feed_interval=0.05, price_max_age=1.0,
                          price_history_seconds=0.2, **QUIET)  # fmt: skip
    background = app.app[BACKGROUND]

    async def old_rows() -> int:
        async with background.db.cursor() as cur:
            await cur.execute(
                "SELECT count(*) FROM background.price_history"
                " WHERE fetched_at < now() - interval '0.2 seconds'"
            )
            row = await cur.fetchone()
        return int(row[0])

    await until(old_rows)
    now = datetime.now(UTC)
    pruned = [await background.prune_price_history(now)]
    while pruned[-1]:  # a run prunes a batch; the next run goes on
        pruned.append(await background.prune_price_history(now))
    assert sum(pruned) >= 1
    async with background.db.cursor() as cur:
        await cur.execute("SELECT min(fetched_at) FROM background.price_history")
        (oldest,) = await cur.fetchone()
    assert oldest is None or oldest >= now - timedelta(seconds=0.2)


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"price_feed_interval": 5.0, "price_max_age": 5.0}, "must exceed price_feed_interval"),
        ({"price_feed_interval": 0}, "greater than 0"),
        ({"price_max_age": -1}, "greater than 0"),
        ({"deposit_expiry_seconds": 0}, "greater than 0"),
        ({"expire_trades_every": 0}, "greater than 0"),
    ],
)
def test_background_settings_are_validated(values: dict[str, Any], problem: str) -> None:
    base = {"admin_token": ADMIN_TOKEN, "token_secret": ADMIN_TOKEN, "architecture": "legacy",
            "legacy_database": {"dsn": "host=nowhere"}, "payments_api_key": ADMIN_TOKEN,
            "ipn_secret": ADMIN_TOKEN}  # fmt: skip
    AppSettings.model_validate(base)
    AppSettings.model_validate({**base, "price_feed_interval": None, "price_max_age": 0.5})
    with pytest.raises(ValidationError, match=problem):
        AppSettings.model_validate({**base, **values})


async def test_the_jobs_endpoint_lists_and_runs_the_jobs(start_app: StartApp) -> None:
    app = await start_app(**QUIET)
    status, body = await app.call("GET", "/api/admin/jobs", token=ADMIN_TOKEN)
    assert status == 200, body
    assert [j["job"] for j in body["jobs"]] == [n.value for n in JobName]
    assert all(j["runs"] == 0 and j["last_run"] is None for j in body["jobs"])
    quotes_every = next(j for j in body["jobs"] if j["job"] == "expire_quotes")
    assert quotes_every["interval_seconds"] == 3600.0

    for name in JobName:
        status, run = await app.call("POST", f"/api/admin/jobs/{name}/run", token=ADMIN_TOKEN)
        assert status == 200, run
        assert (run["job"], run["outcome"], run["error"]) == (name.value, "ok", None)
        assert isinstance(run["count"], int)
    status, body = await app.call("GET", "/api/admin/jobs", token=ADMIN_TOKEN)
    ran = {j["job"]: j for j in body["jobs"]}
    for name in JobName:
        assert (ran[name]["runs"], ran[name]["failures"]) == (1, 0)
        assert ran[name]["last_run"]["outcome"] == "ok"


@pytest.mark.parametrize(
    ("method", "path", "who", "expected", "code"),
    [
        ("POST", "/api/admin/jobs/no_such_job/run", "admin", 404, "unknown_job"),
        ("POST", "/api/admin/jobs/expire_quotes/run", "user", 403, "forbidden"),
        ("POST", "/api/admin/jobs/expire_quotes/run", None, 401, "unauthorized"),
        ("GET", "/api/admin/jobs", "user", 403, "forbidden"),
        ("GET", "/api/admin/jobs", None, 401, "unauthorized"),
        ("GET", "/api/admin/prices", "user", 403, "forbidden"),
        ("GET", "/api/admin/prices", None, 401, "unauthorized"),
        ("GET", "/api/admin/prices/BTC-USDT/history", "user", 403, "forbidden"),
        ("GET", "/api/admin/prices/BTCUSDT/history", "admin", 400, "invalid_pair"),
        ("GET", "/api/admin/prices/BTC-BTC/history", "admin", 400, "invalid_pair"),
        ("GET", "/api/admin/prices/BTC-DOGE/history", "admin", 400, "invalid_pair"),
        ("GET", "/api/admin/prices/BTC-USDT/history?limit=0", "admin", 400, "invalid_query"),
        ("GET", "/api/admin/prices/BTC-USDT/history?limit=x", "admin", 400, "invalid_query"),
        ("GET", "/api/admin/prices/BTC-USDT/history?limit=1001", "admin", 400, "invalid_query"),
        ("GET", "/api/admin/prices/BTC-USDT/history?since_seconds=0", "admin", 400,
         "invalid_query"),
        ("GET", "/api/admin/prices/BTC-USDT/history?since_seconds=604801", "admin", 400,
         "invalid_query"),
    ],
)  # fmt: skip
async def test_bad_background_requests_are_4xx_with_a_reason_and_run_nothing(
    start_app: StartApp, method: str, path: str, who: str | None, expected: int, code: str
) -> None:
    app = await start_app(**QUIET)
    token = ADMIN_TOKEN if who == "admin" else (await app.new_user())[1] if who else None
    status, body = await app.call(method, path, token=token)
    assert status == expected, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    assert all(s.runs == 0 for s in app.app[JOBS].status())


# -- the price fake's drift ------------------------------------------------------------------


async def fake_price(fake: PricesFake, pair: str) -> str:
    async with fake.http.get(f"{fake.url}/v1/prices/{pair}") as answer:
        assert answer.status == 200
        return str((await answer.json())["price"])


async def test_the_fake_drifts_deterministically(prices_fake: PricesFake) -> None:
    fake = prices_fake
    assert await fake.control("GET", "/drift") == {"rate": "0", "ticks": 0}
    assert await fake.control("POST", "/drift", {"rate": "0.01"}) == {"rate": "0.01", "ticks": 0}
    # one tick per price answered, before it answers; shown with the places it was set with
    assert await fake_price(fake, "BTC-USDT") == "64640.00"
    assert await fake_price(fake, "BTC-USDT") == "65286.40"
    inverse = await fake_price(fake, "USDT-BTC")  # 65939.264 shown as 65939.26
    assert Fraction(inverse) == round(1 / Fraction("65939.26"), 18)
    assert await fake.control("POST", "/tick", {"ticks": 2}) == {"rate": "0.01", "ticks": 5}
    async with fake.http.get(f"{fake.url}/v1/prices") as answer:  # all pairs: one tick
        prices = {p["pair"]: p["price"] for p in (await answer.json())["prices"]}
    assert Fraction(prices["BTC-USDT"]) == round(Fraction(64000) * Fraction("1.01") ** 6, 2)
    assert Fraction(prices["USDT-USD"]) == round(Fraction(1) * Fraction("1.01") ** 6, 4)
    assert (await fake.control("GET", "/mode"))["mode"] == "normal"

    # a price set while drifting is taken as it is, and drifts on from there
    await fake.control("PUT", "/prices/BTC-USDT", {"price": "1000.00"})
    assert await fake_price(fake, "BTC-USDT") == "1010.00"
    assert await fake.control("POST", "/drift", {"rate": "0"}) == {"rate": "0", "ticks": 0}
    assert await fake_price(fake, "BTC-USDT") == "1010.00"
    assert await fake.control("POST", "/reset") == {"reset": True}
    assert await fake.control("GET", "/drift") == {"rate": "0", "ticks": 0}
    assert await fake_price(fake, "BTC-USDT") == "64000.00"


async def test_a_falling_price_stays_positive(prices_fake: PricesFake) -> None:
    await prices_fake.control("POST", "/drift", {"rate": "-0.5"})
    await prices_fake.control("POST", "/tick", {"ticks": 100})
    assert await fake_price(prices_fake, "USDT-USD") == "0.0001"  # one unit of the last place
    assert await fake_price(prices_fake, "USD-USDT") == "10000"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/drift", {"rate": 0.01}),
        ("/drift", {"rate": "0.6"}),
        ("/drift", {"rate": "-0.51"}),
        ("/drift", {"rate": "1e-3"}),
        ("/drift", {"rate": "abc"}),
        ("/drift", {"rate": "0.0000000000000000001"}),
        ("/drift", {}),
        ("/drift", ["0.01"]),
        ("/tick", {"ticks": 0}),
        ("/tick", {"ticks": "1"}),
        ("/tick", {"ticks": 10_001}),
    ],
)
async def test_bad_drift_requests_are_400_and_change_nothing(
    prices_fake: PricesFake, path: str, body: Any
) -> None:
    async with prices_fake.http.post(f"{prices_fake.url}/_control{path}", json=body) as answer:
        assert answer.status == 400, await answer.text()
        assert (await answer.json())["error"]["code"] == "invalid_request"
    assert await prices_fake.control("GET", "/drift") == {"rate": "0", "ticks": 0}
    assert await fake_price(prices_fake, "BTC-USDT") == "64000.00"
