"""The error boundary answers when the service's limit runs out, whatever the use case's
clean-up still has to do (a rollback through a slow link can outlast the limit itself)."""

from __future__ import annotations

import asyncio

import pytest

from isolation_harness.reference_app.boundary import Boundary, request_deadline
from isolation_harness.reference_app.errors import DependencyUnavailable, ServiceBroken
from isolation_harness.reference_app.faults import (
    Fault,
    FaultMode,
    FaultSwitches,
    InjectedFailure,
    use_case,
)


async def test_the_503_comes_before_a_slow_clean_up_ends() -> None:
    boundary = Boundary("p2p", timeout=0.05, isolate=True)
    cleaned = asyncio.Event()
    release = asyncio.Event()

    async def stuck() -> None:
        try:
            await asyncio.Event().wait()  # a statement that never returns
        finally:
            await asyncio.shield(release.wait())  # the rollback, through a slow link
            cleaned.set()

    with pytest.raises(DependencyUnavailable) as raised:
        # a boundary that waited for the clean-up would wait for ever: given up after 5 s
        await asyncio.wait_for(boundary.call(stuck), timeout=5)
    assert (raised.value.service, raised.value.code) == ("p2p", "timeout")
    assert "no answer within 0.05 s" in raised.value.message
    assert not cleaned.is_set()  # answered while the clean-up was still going on
    release.set()
    await asyncio.wait_for(cleaned.wait(), timeout=5)  # and the clean-up still ran


async def test_a_timeout_inside_the_limit_is_the_databases() -> None:
    boundary = Boundary("wallet", timeout=5.0, isolate=True)

    async def driver_gave_up() -> None:
        raise TimeoutError

    with pytest.raises(DependencyUnavailable) as raised:
        await boundary.call(driver_gave_up)
    assert "its database did not answer in time" in raised.value.message


async def test_a_cancelled_request_cancels_its_use_case() -> None:
    boundary = Boundary("swap", timeout=5.0, isolate=True)
    started, stopped = asyncio.Event(), asyncio.Event()

    async def long() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    request = asyncio.ensure_future(boundary.call(long))
    await started.wait()
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    await asyncio.wait_for(stopped.wait(), timeout=5)


async def test_results_and_errors_pass_through() -> None:
    boundary = Boundary("deposits", timeout=5.0, isolate=True)

    async def value() -> int:
        return 42

    assert await boundary.call(value) == 42


async def test_the_use_cases_of_one_request_share_its_limit() -> None:
    """Reading an offer and then opening a trade: two use cases, one request, one limit."""
    boundary = Boundary("p2p", timeout=30.0, isolate=True)

    async def quick() -> str:
        return "offer"

    async def stuck() -> None:
        await asyncio.Event().wait()

    with request_deadline(0.2):
        assert await boundary.call(quick) == "offer"
        with pytest.raises(DependencyUnavailable) as raised:
            await asyncio.wait_for(boundary.call(stuck), timeout=5)
    limit = float(raised.value.message.removeprefix("p2p: no answer within ").split()[0])
    assert 0 < limit <= 0.2  # what was left of the request's 0.2 s, not the service's 30 s


async def test_an_injected_failure_is_the_services_own_503() -> None:
    async def broken() -> None:
        raise InjectedFailure("swap")

    with pytest.raises(ServiceBroken) as raised:
        await Boundary("swap", timeout=5.0, isolate=True).call(broken)
    assert (raised.value.status, raised.value.service) == (503, "swap")


async def test_without_a_boundary_the_failure_escapes_as_it_is() -> None:
    """The legacy design: no mapping, no time limit (the source document's root cause 4)."""

    async def broken() -> None:
        raise InjectedFailure("swap")

    with pytest.raises(InjectedFailure):
        await Boundary("swap", timeout=None, isolate=False).call(broken)

    async def slow() -> str:
        await asyncio.sleep(0.2)
        return "done"

    assert await Boundary("swap", timeout=0.01, isolate=False).call(slow) == "done"


async def test_raise_fires_at_a_use_cases_first_connection_only() -> None:
    """A use case that already changed something (its first connection) is let finish when
    the fault comes half-way; the next use case fails before it changes anything."""
    switches = FaultSwitches(("swap", "wallet"))
    with use_case():
        await switches.on_connection("swap")  # claims the quote: no fault yet
        await switches.set("swap", Fault(FaultMode.RAISE))
        await switches.on_connection("swap")  # marks it executed: let finish
        with use_case():  # a nested use case of another service is its own scope
            await switches.on_connection("wallet")
    with use_case(), pytest.raises(InjectedFailure):
        await switches.on_connection("swap")
    with pytest.raises(InjectedFailure):  # outside any use case: every connection is first
        await switches.on_connection("swap")


async def test_a_nested_call_left_little_time_by_a_slow_caller_names_the_caller() -> None:
    """P2P's own database is slow: by the time it asks the wallet to lock funds, most of its
    time is gone. The 503 names P2P, not the wallet that was given the crumbs."""
    p2p = Boundary("p2p", timeout=0.5, isolate=True)
    wallet = Boundary("wallet", timeout=0.5, isolate=True)

    async def lock_funds() -> None:
        await asyncio.sleep(0.2)  # a wallet that answers in its usual time

    async def open_trade() -> None:
        await asyncio.sleep(0.3)  # P2P's slow statements
        await wallet.call(lock_funds)

    with pytest.raises(DependencyUnavailable) as raised:
        await asyncio.wait_for(p2p.call(open_trade), timeout=5)
    assert (raised.value.service, raised.value.code) == ("p2p", "timeout"), raised.value.message


async def test_a_nested_call_that_is_slow_itself_names_itself() -> None:
    p2p = Boundary("p2p", timeout=0.5, isolate=True)
    wallet = Boundary("wallet", timeout=0.5, isolate=True)

    async def lock_funds() -> None:
        await asyncio.Event().wait()  # the wallet's database does not answer

    async def open_trade() -> None:
        await asyncio.sleep(0.01)
        await wallet.call(lock_funds)

    with pytest.raises(DependencyUnavailable) as raised:
        await asyncio.wait_for(p2p.call(open_trade), timeout=5)
    assert (raised.value.service, raised.value.code) == ("wallet", "timeout"), raised.value.message
