"""The client's record of money-moving requests, as the Locust processes write it."""

from __future__ import annotations

from pathlib import Path

from isolation_harness.load.operations import (
    ACKNOWLEDGED,
    FAILED,
    INDETERMINATE,
    complete_line,
    invoke_line,
    outcome_counts,
    read_operations,
)

SENT = {"user_id": "u1", "key": "k1", "currency": "USDT", "amount": "1.50"}


def test_each_request_is_its_invoke_and_its_completion(tmp_path: Path) -> None:
    (tmp_path / "ops-1.jsonl").write_text(
        invoke_line("a", "wallet.withdraw", 1.0, SENT, "wallet#0.1")
        + invoke_line("b", "wallet.withdraw", 2.0, {**SENT, "key": "k2"})
        + complete_line("b", 2.5, FAILED, 409, "HTTP 409 insufficient_funds", {})
        + complete_line("a", 3.0, ACKNOWLEDGED, 201, None, {"transaction_id": 7})
    )
    (tmp_path / "ops-2.jsonl").write_text(
        invoke_line("c", "wallet.withdraw", 1.5, {**SENT, "key": "k3"})  # never completed
        + '{"op": "d", "type": "invo'  # a line cut short by a killed process
    )
    a, c, b = read_operations(tmp_path)
    assert (a.op, a.outcome, a.status, a.returned) == (
        "a",
        ACKNOWLEDGED,
        201,
        {"transaction_id": "7"},
    )
    assert a.sent == SENT
    assert (a.user, b.user) == ("wallet#0.1", None)  # the simulated user that sent it
    assert (b.outcome, b.detail) == (FAILED, "HTTP 409 insufficient_funds")
    assert (c.op, c.outcome, c.status, c.detail) == (
        "c",
        INDETERMINATE,
        0,
        "no completion recorded",
    )
    assert outcome_counts([a, b, c]) == {ACKNOWLEDGED: 1, FAILED: 1, INDETERMINATE: 1}
    assert "k1" in a.describe()
    assert "transaction_id=7" in a.describe()
