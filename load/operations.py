"""The client's own record of every request that creates or moves money (no Locust here).

Jepsen's idea: the verdict on writes rests on what the client *sent* and how each request
ended, never on the values the app answered. Each Locust process appends to
``ops-<pid>.jsonl`` in the samples folder, line-buffered, two lines per request:

- before the request goes out: ``{"op", "type": "invoke", "kind", "at", "sent": {...},
  "user"}``: the values the request carries (user, currency, amount, idempotency key,
  target ids), and the simulated user that sent it (``deposits#0.3``, ``load/seeding.py``);
- once it ended: ``{"op", "type": "complete", "at", "outcome", "status", "detail",
  "returned": {...}}``: ``acknowledged``, ``failed`` or ``indeterminate`` (see
  :func:`outcome_of`), and the ids the answer named (transaction, deposit…), for messages.

An invoke without its completion (the process was killed meanwhile) is indeterminate.
:data:`OPERATION_KINDS` is the contract between the users that write the record and the
oracle (``chaos/invariants/oracle.py``) that compares it with the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Outcome = Literal["acknowledged", "failed", "indeterminate"]
ACKNOWLEDGED: Outcome = "acknowledged"
FAILED: Outcome = "failed"
INDETERMINATE: Outcome = "indeterminate"
OPS_GLOB = "ops-*.jsonl"


@dataclass(frozen=True)
class OperationKind:
    """A kind of money-moving request: the sent fields that name one operation (two
    requests with the same identity ask for the same operation: a retry), then the sent
    fields whose stored values must equal what was sent."""

    name: str
    identity: tuple[str, ...]
    values: tuple[str, ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        return self.identity + self.values


def _kinds(*kinds: OperationKind) -> dict[str, OperationKind]:
    return {kind.name: kind for kind in kinds}


#: every kind the load users record, with the fields they send. ``key`` is the request's
#: Idempotency-Key; ``by`` who asked (buyer, seller, admin); ``amount`` a decimal string.
OPERATION_KINDS: Mapping[str, OperationKind] = _kinds(
    OperationKind("deposit.create", ("user_id", "key"), ("currency", "amount")),
    # The payer asks the provider to finish the deposit's payment: the provider's IPN must
    # credit the deposit, as the client created it.
    OperationKind("deposit.pay", ("deposit_id",), ("user_id", "currency", "amount")),
    OperationKind("wallet.withdraw", ("user_id", "key"), ("currency", "amount")),
    OperationKind("admin.credit", ("key",), ("user_id", "currency", "amount")),
    OperationKind("admin.liquidity", ("key",), ("currency", "amount")),
    OperationKind("p2p.trade_open", ("buyer_id", "key"), ("offer_id", "amount")),
    OperationKind("p2p.trade_paid", ("trade_id",), ("by",)),
    OperationKind("p2p.trade_release", ("trade_id",), ("by",)),
    OperationKind("p2p.trade_cancel", ("trade_id",), ("by",)),
    OperationKind("p2p.trade_dispute", ("trade_id",), ("by",)),
    OperationKind("p2p.trade_resolve", ("trade_id",), ("by", "winner")),
    # Sell ``amount`` of ``sell`` for ``buy``: the terms the client asked the quote for.
    OperationKind("swap.execute", ("quote_id",), ("user_id", "sell", "amount", "buy")),
    # Buy ``amount`` of ``buy`` paying in ``pay``: the terms the client asked the quote for.
    OperationKind("express.order", ("quote_id",), ("user_id", "buy", "amount", "pay")),
)

#: (error code, when the error names the called service itself) of 5xx answers that prove
#: nothing was written: ``service_broken`` is raised by the service's boundary before the
#: use case starts; a deposit is written only after the provider answered, in one statement.
NOTHING_WRITTEN_5XX: frozenset[str] = frozenset(
    {"service_broken", "provider_unavailable", "provider_refused"}
)


def outcome_of(
    status: int,
    answered_as_documented: bool,
    error_code: str | None = None,
    error_service: str | None = None,
    service: str | None = None,
) -> Outcome:
    """How a request ended, as far as the client can tell.

    - ``acknowledged``: a 2xx whose body holds every documented field;
    - ``failed``: a definite refusal: a 4xx, or a 5xx that the app's own service answered
      with a code proving nothing was written (:data:`NOTHING_WRITTEN_5XX`);
    - ``indeterminate``: anything else: no answer, a 2xx that cannot be trusted, any other
      5xx (a driver error or a time limit may strike after a commit, and a later step, a
      retry or a job may finish what was begun).
    """
    if 200 <= status < 300:
        return ACKNOWLEDGED if answered_as_documented else INDETERMINATE
    if 400 <= status < 500:
        return FAILED
    if status >= 500 and error_code in NOTHING_WRITTEN_5XX and error_service == service:
        return FAILED
    return INDETERMINATE


@dataclass(frozen=True)
class Operation:
    """One money-moving request as the client recorded it."""

    op: str
    kind: str
    sent: Mapping[str, str]
    outcome: Outcome
    at: float = 0.0
    status: int = 0
    detail: str | None = None
    returned: Mapping[str, str] = field(default_factory=dict)
    #: False when no completion was recorded (the run ended, or the process died, first)
    completed: bool = True
    #: the simulated user that sent it (``deposits#0.3``), if recorded
    user: str | None = None

    def describe(self) -> str:
        """``withdraw request 3f2a… (user_id=…, amount=1.5; answered 201, transaction_id=7)``."""
        sent = ", ".join(f"{k}={v}" for k, v in self.sent.items())
        answer = f"answered {self.status}" if self.status else "no answer"
        if self.detail:
            answer += f" {self.detail}"
        returned = "".join(f", {k}={v}" for k, v in self.returned.items())
        return f"{self.kind} request {self.op} ({sent}; {answer}{returned})"


def outcome_counts(operations: Iterable[Operation]) -> dict[str, int]:
    """How many requests ended each way: ``{"acknowledged": n, "failed": n, ...}``."""
    counts: dict[str, int] = dict.fromkeys((ACKNOWLEDGED, FAILED, INDETERMINATE), 0)
    for operation in operations:
        counts[operation.outcome] += 1
    return counts


def invoke_line(
    op: str, kind: str, at: float, sent: Mapping[str, Any], user: str | None = None
) -> str:
    """The line recording a request about to go out, newline included."""
    record = {"op": op, "type": "invoke", "kind": kind, "at": at, "sent": _texts(sent),
              "user": user}  # fmt: skip
    return json.dumps(record, separators=(",", ":")) + "\n"


def complete_line(
    op: str,
    at: float,
    outcome: Outcome,
    status: int,
    detail: str | None,
    returned: Mapping[str, Any],
) -> str:
    """The line recording how a request ended, newline included."""
    record = {"op": op, "type": "complete", "at": at, "outcome": outcome, "status": status,
              "detail": detail, "returned": _texts(returned)}  # fmt: skip
    return json.dumps(record, separators=(",", ":")) + "\n"


def _texts(values: Mapping[str, Any]) -> dict[str, str]:
    """Every value as text (ids, decimal strings untouched); absent ones dropped."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()
            if v is not None}  # fmt: skip


def read_operations(folder: Path) -> list[Operation]:
    """Every request of every process in ``folder``'s ops files, in the order they began."""
    invoked: dict[str, dict[str, Any]] = {}
    completed: dict[str, dict[str, Any]] = {}
    for record in _records(folder):
        op = str(record.get("op"))
        if record.get("type") == "invoke":
            invoked[op] = record
        elif record.get("type") == "complete":
            completed[op] = record
    found = []
    for op, start in invoked.items():
        end = completed.get(op)
        found.append(
            Operation(
                op=op,
                kind=str(start["kind"]),
                sent=dict(start.get("sent") or {}),
                outcome=_outcome(end),
                at=float(start.get("at", 0)),
                status=int(end.get("status") or 0) if end else 0,
                detail=(end.get("detail") if end else "no completion recorded"),
                returned=dict(end.get("returned") or {}) if end else {},
                completed=end is not None,
                user=start.get("user"),
            )
        )
    return sorted(found, key=lambda o: o.at)


def _outcome(end: Mapping[str, Any] | None) -> Outcome:
    value = end.get("outcome") if end else None
    if value == ACKNOWLEDGED:
        return ACKNOWLEDGED
    if value == FAILED:
        return FAILED
    return INDETERMINATE


def _records(folder: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(folder.glob(OPS_GLOB)):
        with path.open() as handle:
            for line in handle:
                if not line.endswith("\n"):
                    continue  # the last line of a process killed while writing it
                record = json.loads(line)
                if isinstance(record, dict):
                    yield record
