"""The facts the money oracle judges, read directly at their source: the app's database (the
superuser's connection, never through the app) and the payment provider's own book.

Each stored operation is read where its service keeps it (``reference_app/migrations``):
deposits in ``deposits.deposits`` (idempotency key as sent); the money moved in the wallet's
ledger, whose ``idempotency_key`` and ``reference`` say which request or record moved it
(``withdraw:<user>:<key>``, ``fund:<user>:<key>``, ``express:liquidity:<key>``,
``deposit:<deposit id>``, ``swap:quote:<quote id>``, ``express:order:<order id>``,
``p2p:trade:<trade id>``); P2P transitions in ``p2p.trade_events``, with who asked. The
comparison itself is :mod:`chaos.invariants.oracle`'s, pure.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from isolation_harness.chaos.errors import ComponentError
from isolation_harness.chaos.invariants.oracle import (
    FINISHED,
    DepositCredit,
    ProviderPayment,
    StoredDeposit,
    StoredOperation,
)
from isolation_harness.chaos.stack import postgres

#: the ledger transaction kinds that record operations the load asks for
LEDGER_KINDS = ("deposit", "withdrawal", "funding", "liquidity_funding", "swap", "express_buy",
                "escrow_lock")  # fmt: skip
#: trade states a party or the admin asks for -> the operation kind
TRANSITIONS = {
    "paid": "p2p.trade_paid",
    "released": "p2p.trade_release",
    "cancelled": "p2p.trade_cancel",
    "disputed": "p2p.trade_dispute",
    "resolved_buyer": "p2p.trade_resolve",
    "resolved_seller": "p2p.trade_resolve",
}
PROVIDER_TIMEOUT = 10.0
#: seconds between two looks at whether the provider still delivers IPNs
QUIET_POLL = 0.05


def database_now(cur: Any) -> datetime:
    """The database's clock: operations stored from then on belong to the run."""
    cur.execute("SELECT now()")
    now: datetime = cur.fetchone()[0]
    return now


def database_now_at(dsn: str) -> datetime:
    """:func:`database_now` on a connection of its own to ``dsn``."""
    conn = postgres.connect(dsn, timeout=5)
    try:
        with conn.cursor() as cur:
            return database_now(cur)
    finally:
        conn.close()


def _rows(cur: Any, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    cur.execute(query, params)
    return list(cur.fetchall())


@dataclass
class _Transaction:
    id: str
    kind: str
    reference: str | None
    key: str | None
    #: (owner, currency, account kind, amount) of each entry
    legs: list[tuple[str, str, str, Decimal]]

    def leg(self, account_kind: str, positive: bool) -> tuple[str, str, Decimal] | None:
        """(owner, currency, amount moved) of its first entry of that kind and sign."""
        for owner, currency, kind, amount in self.legs:
            if kind == account_kind and (amount > 0) == positive:
                return owner, currency, abs(amount)
        return None


def stored_operations(cur: Any, since: datetime) -> list[StoredOperation]:
    """Every operation of the kinds the load makes, stored at or after ``since``."""
    found = [
        StoredOperation(
            "deposit.create",
            f"deposit {id_}",
            {"user_id": user, "key": key, "currency": currency, "amount": str(amount)},
            {"id": id_, "provider_payment_id": payment or ""},
        )
        for id_, user, key, currency, amount, payment in _rows(
            cur,
            "SELECT id::text, user_id::text, idempotency_key, currency, amount, "
            "provider_payment_id FROM deposits.deposits WHERE created_at >= %(since)s",
            {"since": since},
        )
    ]
    transactions: dict[str, _Transaction] = {}
    for tid, kind, reference, key, owner, currency, account_kind, amount in _rows(
        cur,
        "SELECT t.id::text, t.kind, t.reference, t.idempotency_key, a.owner, a.currency, "
        "a.kind, e.amount FROM wallet.transactions t "
        "JOIN wallet.entries e ON e.transaction_id = t.id "
        "JOIN wallet.accounts a ON a.id = e.account_id "
        "WHERE t.created_at >= %(since)s AND t.kind = ANY(%(kinds)s) ORDER BY t.id, e.id",
        {"since": since, "kinds": list(LEDGER_KINDS)},
    ):
        transaction = transactions.setdefault(tid, _Transaction(tid, kind, reference, key, []))
        transaction.legs.append((owner, currency, account_kind, Decimal(amount)))
    orders = _quote_of_order(cur, transactions.values())
    trades = _trades(cur, transactions.values())
    for transaction in transactions.values():
        operation = _ledger_operation(transaction, orders, trades)
        if operation is not None:
            found.append(operation)
    for event_id, trade_id, state, actor in _rows(
        cur,
        "SELECT id, trade_id::text, state, actor FROM p2p.trade_events "
        "WHERE created_at >= %(since)s AND actor <> 'system' AND state = ANY(%(states)s)",
        {"since": since, "states": list(TRANSITIONS)},
    ):
        fields = {"trade_id": trade_id, "by": actor}
        if state.startswith("resolved_"):
            fields["winner"] = state.removeprefix("resolved_")
        found.append(
            StoredOperation(
                TRANSITIONS[state],
                f"trade {trade_id} event {event_id} ({state} by {actor})",
                fields,
            )
        )
    return found


def _user_scoped(key: str | None, prefix: str) -> str:
    """The client's key of a ledger key ``<prefix>:<user>:<key>`` (a user id holds no
    colon); "" when the key is not of that form."""
    parts = (key or "").split(":", 2)
    return parts[2] if len(parts) == 3 and parts[0] == prefix else ""


def _suffix(value: str | None, prefix: str) -> str | None:
    return value.removeprefix(prefix) if value is not None and value.startswith(prefix) else None


def _quote_of_order(cur: Any, transactions: Any) -> dict[str, str]:
    ids = [_suffix(t.reference, "express:order:") for t in transactions if t.kind == "express_buy"]
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    rows = _rows(
        cur,
        "SELECT id::text, quote_id::text FROM express.orders WHERE id::text = ANY(%(ids)s)",
        {"ids": wanted},
    )
    return dict(rows)


def _trades(cur: Any, transactions: Any) -> dict[str, tuple[str, str, str]]:
    ids = [_suffix(t.reference, "p2p:trade:") for t in transactions if t.kind == "escrow_lock"]
    wanted = [i for i in ids if i]
    if not wanted:
        return {}
    return {
        trade_id: (buyer, key, offer_id)
        for trade_id, buyer, key, offer_id in _rows(
            cur,
            "SELECT id::text, buyer::text, idempotency_key, offer_id::text FROM p2p.trades "
            "WHERE id::text = ANY(%(ids)s)",
            {"ids": wanted},
        )
    }


def _ledger_operation(
    t: _Transaction, orders: dict[str, str], trades: dict[str, tuple[str, str, str]]
) -> StoredOperation | None:
    """The operation a ledger transaction records, in the fields of its kind."""
    ids = {"transaction_id": t.id}
    fields: dict[str, str] = {}
    if t.kind == "deposit":
        kind, name = "deposit.pay", f"deposit credit transaction {t.id}"
        fields["deposit_id"] = _suffix(t.reference, "deposit:") or ""
        _put(fields, t.leg("available", positive=True), "user_id", "currency", "amount")
    elif t.kind == "withdrawal":
        kind, name = "wallet.withdraw", f"withdrawal transaction {t.id}"
        _put(fields, t.leg("available", positive=False), "user_id", "currency", "amount")
        fields["key"] = _user_scoped(t.key, "withdraw")
    elif t.kind == "funding":
        kind, name = "admin.credit", f"funding transaction {t.id}"
        fields["key"] = _user_scoped(t.key, "fund")
        _put(fields, t.leg("available", positive=True), "user_id", "currency", "amount")
    elif t.kind == "liquidity_funding":
        kind, name = "admin.liquidity", f"liquidity funding transaction {t.id}"
        fields["key"] = _suffix(t.key, "express:liquidity:") or ""
        _put(fields, t.leg("system", positive=True), "", "currency", "amount")
    elif t.kind == "swap":
        kind, name = "swap.execute", f"swap transaction {t.id}"
        fields["quote_id"] = _suffix(t.reference, "swap:quote:") or ""
        _put(fields, t.leg("available", positive=False), "user_id", "sell", "amount")
        _put(fields, t.leg("available", positive=True), "", "buy", "")
    elif t.kind == "express_buy":
        kind, name = "express.order", f"express buy transaction {t.id}"
        order_id = _suffix(t.reference, "express:order:") or ""
        ids["order_id"] = order_id
        fields["quote_id"] = orders.get(order_id, "")
        _put(fields, t.leg("available", positive=True), "user_id", "buy", "amount")
        _put(fields, t.leg("available", positive=False), "", "pay", "")
    elif t.kind == "escrow_lock":
        trade_id = _suffix(t.reference, "p2p:trade:")
        if trade_id is None:
            return None  # an escrow of something else than a trade
        kind, name = "p2p.trade_open", f"escrow lock transaction {t.id} of trade {trade_id}"
        ids["trade_id"] = trade_id
        buyer, key, offer_id = trades.get(trade_id, ("", "", ""))
        fields.update({"buyer_id": buyer, "key": key, "offer_id": offer_id})
        _put(fields, t.leg("escrow", positive=True), "", "", "amount")
    else:
        return None
    return StoredOperation(kind, name, {k: v for k, v in fields.items() if v}, ids)


def _put(
    fields: dict[str, str], leg: tuple[str, str, Decimal] | None, owner: str, currency: str,
    amount: str,
) -> None:  # fmt: skip
    """Name a leg's owner, currency and amount in ``fields`` (an empty name skips one)."""
    if leg is None:
        return
    for name, value in zip((owner, currency, amount), leg, strict=True):
        if name:
            fields[name] = str(value)


def deposit_facts(
    cur: Any, payment_ids: Sequence[str], since: datetime
) -> tuple[list[StoredDeposit], list[DepositCredit]]:
    """The deposits of these provider payments or credited, and every deposit credit (those
    before ``since`` marked as such: they are judged against their payment only)."""
    credits = [
        DepositCredit(
            tid,
            _suffix(reference, "deposit:") or "",
            owner,
            currency,
            Decimal(amount),
            bool(recent),
        )
        for tid, reference, owner, currency, amount, recent in _rows(
            cur,
            "SELECT t.id::text, t.reference, a.owner, a.currency, e.amount, "
            "t.created_at >= %(since)s FROM wallet.transactions t "
            "JOIN wallet.entries e ON e.transaction_id = t.id "
            "JOIN wallet.accounts a ON a.id = e.account_id "
            "WHERE t.kind = 'deposit' AND a.kind = 'available' ORDER BY t.id",
            {"since": since},
        )
    ]
    deposits = [
        StoredDeposit(id_, payment, user, currency, Decimal(amount), status)
        for id_, payment, user, currency, amount, status in _rows(
            cur,
            "SELECT id::text, provider_payment_id, user_id::text, currency, amount, status "
            "FROM deposits.deposits WHERE provider_payment_id = ANY(%(payments)s) "
            "OR id::text = ANY(%(credited)s)",
            {"payments": list(payment_ids), "credited": [c.deposit_id for c in credits]},
        )
    ]
    return deposits, credits


# -- the payment provider's book ------------------------------------------------------------


def _get(url: str, timeout: float) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - our fake
            return json.loads(answer.read(), parse_float=Decimal)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ComponentError(
            f"cannot read the payment provider's book at {url} ({exc})",
            "check that the payments fake runs (`harness status`)",
        ) from exc


def _post(url: str, timeout: float) -> Any:
    request = urllib.request.Request(url, data=b"{}", method="POST",  # noqa: S310 - our fake
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return json.loads(answer.read(), parse_float=Decimal)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ComponentError(f"POST {url} failed ({exc})") from exc


def _last_attempts(attempts: Any) -> dict[str, dict[str, Any]]:
    last: dict[str, dict[str, Any]] = {}
    for attempt in attempts if isinstance(attempts, list) else []:
        if isinstance(attempt, dict):
            last[str(attempt.get("payment_id"))] = attempt
    return last


def provider_book(url: str, timeout: float = PROVIDER_TIMEOUT) -> list[ProviderPayment]:
    """Every payment the provider fake at ``url`` knows, with its last IPN's fate, read once
    no IPN is being delivered (at most ``timeout`` seconds later): a payment is finished at
    the provider before its last IPN reaches the app, and a request the load cut off is
    still delivering it."""
    base = url.rstrip("/")
    deadline = time.monotonic() + timeout
    log = _get(f"{base}/_control/ipn-log", timeout)
    while log.get("delivering") and time.monotonic() < deadline:
        time.sleep(QUIET_POLL)
        log = _get(f"{base}/_control/ipn-log", timeout)
    payments = _get(f"{base}/_control/payments", timeout).get("payments", [])
    last = _last_attempts(log.get("attempts"))
    book = []
    for payment in payments:
        payment_id = str(payment["payment_id"])
        attempt = last.get(payment_id)
        ipn = None
        if attempt is not None:
            fate = (
                f"answered HTTP {attempt.get('status')}"
                if attempt.get("delivered")
                else f"not delivered ({attempt.get('error')})"
            )
            ipn = f"{attempt.get('payment_status')}, {fate}"
        book.append(
            ProviderPayment(
                payment_id=payment_id,
                status=str(payment["payment_status"]),
                price_amount=Decimal(payment["price_amount"]),
                price_currency=str(payment["price_currency"]),
                actually_paid=Decimal(payment.get("actually_paid") or 0),
                order_id=payment.get("order_id"),
                last_ipn=ipn,
            )
        )
    return book


@dataclass(frozen=True)
class Redelivery:
    """What :func:`redeliver_ipns` did: how many IPNs it sent again, and why each had
    failed the first time (the app's status or the transport error), so that a report can
    say why a payment was not acknowledged."""

    resent: int
    reasons: tuple[str, ...] = ()

    def summary(self) -> str:
        counts = sorted(Counter(self.reasons).items())
        return ", ".join(f"{reason} x{n}" for reason, n in counts)


def redeliver_ipns(url: str, rounds: int = 3, timeout: float = PROVIDER_TIMEOUT) -> Redelivery:
    """Resend the last IPN of each finished payment whose last delivery failed, as the real
    provider retries them (the fake never does by itself).

    Called once the load stopped and every fault was reverted: an IPN the app could not take
    during a fault is then delivered, as it would be in production. Up to ``rounds`` passes
    while some delivery still fails.
    """
    base = url.rstrip("/")
    resent = 0
    reasons: list[str] = []
    for round_ in range(rounds):
        statuses = {
            str(p["payment_id"]): p["payment_status"]
            for p in _get(f"{base}/_control/payments", timeout).get("payments", [])
        }
        last = _last_attempts(_get(f"{base}/_control/ipn-log", timeout).get("attempts"))
        pending = [
            payment_id
            for payment_id, attempt in last.items()
            if statuses.get(payment_id) == FINISHED and not attempt.get("delivered")
        ]
        if round_ == 0:
            reasons = [_failure(last[payment_id]) for payment_id in pending]
        delivered = []
        for payment_id in pending:
            answer = _post(f"{base}/_control/payments/{payment_id}/resend-ipn", timeout)
            delivered.append(bool(answer.get("ipn", {}).get("delivered")))
        resent += len(pending)
        if all(delivered):
            break
    return Redelivery(resent, tuple(reasons))


def _failure(attempt: dict[str, Any]) -> str:
    error, status = attempt.get("error"), attempt.get("status")
    return str(error) if error else f"HTTP {status}"
