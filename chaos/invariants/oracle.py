"""The money oracle: what the client sent against what the database holds, and the payment
provider's book as a second witness. Pure: data in, a verdict out, no I/O.

:func:`judge_operations` is Jepsen's checker for the client's record
(:mod:`load.operations`): every **acknowledged** request is stored with the values the client
sent (else it is *lost*); every stored operation is explained by a request that was
acknowledged or whose outcome is unknown (else it is *unexpected*, also when the only
request asking for it was refused); nothing is stored twice (*duplicated*). Requests of
unknown outcome (*indeterminate*) may or may not have been applied: they are counted both
ways, never judged.

:func:`reconcile_provider` checks the provider's book: every payment it reports
``finished`` is credited exactly once, with its amount, and nothing is credited without
such a payment, even on a deposit the app had already expired.

Database facts arrive as plain values: :mod:`chaos.invariants.facts` reads them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from isolation_harness.load.operations import (
    ACKNOWLEDGED,
    FAILED,
    INDETERMINATE,
    OPERATION_KINDS,
    Operation,
)

#: sent fields compared as decimal amounts; every other field is compared as text
AMOUNT_FIELDS = frozenset({"amount"})


@dataclass(frozen=True)
class Verdict:
    """What a check found: counts by category, and one message per violation."""

    counts: dict[str, int]
    violations: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.violations


@dataclass(frozen=True)
class StoredOperation:
    """An operation as the database holds it, in the fields of its kind
    (:data:`load.operations.OPERATION_KINDS`): ``{"user_id", "key", "amount", ...}``.

    ``name`` says where it is (``withdrawal transaction 57``); ``ids`` are the ids an
    answer would name for it (``{"transaction_id": "57"}``), to check what was answered.
    """

    kind: str
    name: str
    fields: Mapping[str, str]
    ids: Mapping[str, str] = field(default_factory=dict)


Identity = tuple[str, tuple[str | None, ...]]


def judge_operations(operations: Sequence[Operation], stored: Sequence[StoredOperation]) -> Verdict:
    """Compare the client's record with the stored operations (see the module's docstring).

    Counts: ``checked`` (acknowledged requests verified), ``stored``, ``lost``,
    ``unexpected``, ``duplicated``, ``failed``, ``indeterminate``, and of the
    indeterminate requests ``indeterminate_applied`` and ``indeterminate_not_applied``.
    """
    known = [o for o in operations if o.kind in OPERATION_KINDS]
    counts = Counter(
        {"checked": 0, "stored": len(stored), "lost": 0, "unexpected": 0, "duplicated": 0,
         "failed": 0, "indeterminate": 0, "indeterminate_applied": 0,
         "indeterminate_not_applied": 0}
    )  # fmt: skip
    # No record at all checks nothing (``checked`` 0): the judge makes that an invalid run
    # (an invariant under its floor), not a violation, and never a pass.
    violations: list[str] = []
    requests: dict[Identity, list[Operation]] = defaultdict(list)
    for operation in known:
        requests[_identity(operation.kind, operation.sent)].append(operation)
        counts["checked" if operation.outcome == ACKNOWLEDGED else operation.outcome] += 1
    found: dict[Identity, list[StoredOperation]] = defaultdict(list)
    for row in stored:
        found[_identity(row.kind, row.fields)].append(row)

    applied: set[Identity] = set()
    for identity, asked in requests.items():
        rows = found.get(identity, [])
        undecided = [o for o in asked if o.outcome == INDETERMINATE]
        acknowledged = [o for o in asked if o.outcome == ACKNOWLEDGED]
        if not rows:
            counts["indeterminate_not_applied"] += len(undecided)
            if acknowledged:
                counts["lost"] += 1
                violations.append(f"lost: {acknowledged[0].describe()} is not in the database")
            continue
        applied.add(identity)
        counts["indeterminate_applied"] += len(undecided)
        live = acknowledged + undecided
        if not live:
            counts["unexpected"] += len(rows)
            violations += [
                f"unexpected: {row.name} ({_show(row.fields)}) was stored, but the only "
                f"request for it was refused: {asked[0].describe()}"
                for row in rows
            ]
            continue
        first, *again = rows
        if again:
            counts["duplicated"] += len(again)
            names = ", ".join(row.name for row in rows)
            violations.append(
                f"duplicated: {len(rows)} stored operations ({names}) for one request: "
                f"{live[0].describe()}"
            )
        if not any(_same_values(o, first) for o in live):
            sent = live[0]
            differences = _differences(sent, first)
            if acknowledged:
                counts["lost"] += 1
                violations.append(
                    f"lost: {acknowledged[0].describe()} is stored as {first.name} with "
                    f"{differences}"
                )
            else:
                counts["unexpected"] += 1
                violations.append(
                    f"unexpected: {first.name} is stored with {differences}; no request "
                    f"sent that ({sent.describe()})"
                )
            continue
        for operation in acknowledged:
            wrong = {k: v for k, v in operation.returned.items()
                     if k in first.ids and first.ids[k] != v}  # fmt: skip
            if wrong:
                counts["lost"] += 1
                answered = ", ".join(f"{k}={v}" for k, v in wrong.items())
                violations.append(
                    f"lost: {operation.describe()} was answered with {answered}, but the "
                    f"database holds it as {first.name}"
                )
                break

    for identity, rows in found.items():
        if identity in requests:
            continue
        for row in rows:
            twin = _twin(row, requests, applied)
            if twin is not None:
                counts["duplicated"] += 1
                violations.append(
                    f"duplicated: {row.name} ({_show(row.fields)}) repeats {twin.describe()}, "
                    "which was already applied"
                )
            else:
                counts["unexpected"] += 1
                violations.append(
                    f"unexpected: {row.name} ({_show(row.fields)}) is explained by no request"
                )
    return Verdict(dict(counts), violations)


def _identity(kind: str, values: Mapping[str, str]) -> Identity:
    spec = OPERATION_KINDS.get(kind)
    names = spec.identity if spec is not None else ()
    return kind, tuple(_normal(name, values.get(name)) for name in names)


def _normal(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if name in AMOUNT_FIELDS:
        try:
            return format(Decimal(value).normalize(), "f")
        except InvalidOperation:
            return value
    return value if name == "key" else value.strip().lower()


def _same_values(operation: Operation, row: StoredOperation) -> bool:
    return not _different(operation, row)


def _different(operation: Operation, row: StoredOperation) -> list[str]:
    spec = OPERATION_KINDS[operation.kind]
    return [
        name
        for name in spec.values
        if _normal(name, operation.sent.get(name)) != _normal(name, row.fields.get(name))
    ]


def _differences(operation: Operation, row: StoredOperation) -> str:
    return ", ".join(
        f"{name} {row.fields.get(name)} where the client sent {operation.sent.get(name)}"
        for name in _different(operation, row)
    )


def _twin(
    row: StoredOperation,
    requests: Mapping[Identity, list[Operation]],
    applied: set[Identity],
) -> Operation | None:
    """An applied request this stored operation repeats: same kind, same values and same
    owner (the identity but for its idempotency key), stored under another identity."""
    spec = OPERATION_KINDS.get(row.kind)
    if spec is None:
        return None
    owners = [name for name in spec.identity if name != "key"]
    for identity in applied:
        if identity[0] != row.kind:
            continue
        for operation in requests[identity]:
            if operation.outcome == FAILED or not _same_values(operation, row):
                continue
            if all(
                _normal(n, operation.sent.get(n)) == _normal(n, row.fields.get(n)) for n in owners
            ):
                return operation
    return None


def _show(values: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


# -- the provider's book -------------------------------------------------------------------

#: the provider's currency codes -> the app's: the witness's own table, not the app's
PROVIDER_CURRENCIES: Mapping[str, str] = {"btc": "BTC", "eth": "ETH", "usdttrc20": "USDT"}
FINISHED = "finished"


@dataclass(frozen=True)
class ProviderPayment:
    """A payment as the provider's book reports it.

    ``price_amount`` in ``price_currency`` is what the payment is for: the app credits a
    finished deposit with the deposit's amount, which is what it asked the provider to
    charge (``price_amount``; paid in the same currency, ``pay_amount`` is the same).
    ``last_ipn`` says what became of the last notification the provider sent.
    """

    payment_id: str
    status: str
    price_amount: Decimal
    price_currency: str
    actually_paid: Decimal = Decimal(0)
    order_id: str | None = None
    last_ipn: str | None = None


@dataclass(frozen=True)
class StoredDeposit:
    """A deposit as the app stored it."""

    deposit_id: str
    payment_id: str | None
    user_id: str
    currency: str
    amount: Decimal
    status: str


@dataclass(frozen=True)
class DepositCredit:
    """A ledger transaction crediting a deposit to its user's available balance."""

    transaction_id: str
    deposit_id: str
    user_id: str
    currency: str
    amount: Decimal
    #: made during the run (credits before it are judged only against their payment)
    recent: bool = True


def reconcile_provider(
    payments: Sequence[ProviderPayment],
    deposits: Sequence[StoredDeposit],
    credits: Sequence[DepositCredit],
) -> Verdict:
    """The provider's book against the app's deposits and the ledger's deposit credits.

    Counts: ``payments``, ``finished``, ``credited`` (finished and credited once, rightly),
    ``uncredited``, ``credited_twice``, ``wrong_amount``, ``credits``,
    ``credits_without_payment``.
    """
    by_payment = {d.payment_id: d for d in deposits if d.payment_id is not None}
    by_id = {d.deposit_id: d for d in deposits}
    credited: dict[str, list[DepositCredit]] = defaultdict(list)
    for credit in credits:
        credited[credit.deposit_id.lower()].append(credit)
    finished = [p for p in payments if p.status == FINISHED]
    counts = Counter(
        {"payments": len(payments), "finished": len(finished), "credited": 0, "uncredited": 0,
         "credited_twice": 0, "wrong_amount": 0, "credits": sum(c.recent for c in credits),
         "credits_without_payment": 0}
    )  # fmt: skip
    violations: list[str] = []
    for payment in finished:
        what = (
            f"payment {payment.payment_id} ({_amount(payment.price_amount)} "
            f"{payment.price_currency}, finished at the provider"
        )
        deposit = by_payment.get(payment.payment_id)
        if deposit is None:
            counts["uncredited"] += 1
            violations.append(
                f"uncredited: {what}, order {payment.order_id}) belongs to no deposit of the app"
            )
            continue
        what += f", deposit {deposit.deposit_id})"
        found = credited.get(deposit.deposit_id.lower(), [])
        if not found:
            counts["uncredited"] += 1
            ipn = f"; its last IPN: {payment.last_ipn}" if payment.last_ipn else ""
            violations.append(
                f"uncredited: {what} was never credited; the deposit is {deposit.status}{ipn}"
            )
            continue
        if len(found) > 1:
            counts["credited_twice"] += 1
            violations.append(
                f"credited twice: {what} was credited {len(found)} times, by transactions "
                + ", ".join(c.transaction_id for c in found)
            )
            continue
        credit = found[0]
        currency = PROVIDER_CURRENCIES.get(payment.price_currency.lower())
        if (credit.amount, credit.currency, credit.user_id.lower()) != (
            payment.price_amount, currency, deposit.user_id.lower(),
        ):  # fmt: skip
            counts["wrong_amount"] += 1
            violations.append(
                f"wrong amount: {what} was credited {_amount(credit.amount)} {credit.currency} "
                f"to user {credit.user_id} by transaction {credit.transaction_id}; the "
                f"provider's payment is for {_amount(payment.price_amount)} "
                f"{currency or payment.price_currency}, the deposit's user is {deposit.user_id}"
            )
            continue
        counts["credited"] += 1
    finished_ids = {p.payment_id for p in finished}
    statuses = {p.payment_id: p.status for p in payments}
    for credit in credits:
        if not credit.recent:
            continue
        deposit = by_id.get(credit.deposit_id.lower())
        payment_id = deposit.payment_id if deposit is not None else None
        if payment_id is not None and payment_id in finished_ids:
            continue
        counts["credits_without_payment"] += 1
        if deposit is None:
            why = "for no deposit of the app"
        elif payment_id is None or payment_id not in statuses:
            why = f"for deposit {deposit.deposit_id}, whose payment the provider does not know"
        else:
            why = (
                f"for deposit {deposit.deposit_id}, whose payment {payment_id} is "
                f"{statuses[payment_id]} at the provider"
            )
        violations.append(
            f"credit without payment: transaction {credit.transaction_id} credited "
            f"{_amount(credit.amount)} {credit.currency} {why}"
        )
    return Verdict(dict(counts), violations)


def _amount(value: Decimal) -> str:
    return format(value.normalize(), "f")
