"""toxiproxy-python, the client many teams' scripts already use, drives the harness's own
Toxiproxy server: what it changes mid-run the harness sees (its residue check names a toxic
the harness never added), and the two clients agree on every proxy's state.

A real stack, a real Toxiproxy server, toxiproxy-python 0.1.1 as published.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from toxiproxy import Toxiproxy

from isolation_harness.chaos.errors import EXIT_INVARIANT
from isolation_harness.chaos.run.runner import run_scenario
from isolation_harness.chaos.scenario.model import Scenario
from isolation_harness.chaos.stack.settings import Settings
from isolation_harness.chaos.stack.state import StackState
from isolation_harness.chaos.stack.throwaway import throwaway_stack
from isolation_harness.chaos.toxiproxy.client import ToxiproxyClient

SCENARIO = {
    "name": "toxiproxy-python-mid-run",
    "load": {"users": 4, "spawn_rate": 8, "mix": {"wallet": 1}},
    "timeline": [{"phase": "baseline", "duration": "2s"}, {"phase": "steady", "duration": "2s"}],
    "thresholds": "none",
    "invariants": ["no_toxic_left"],
}


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Settings, StackState]]:
    with throwaway_stack(Settings.from_env({}).with_overrides(app_workers=1)) as running:
        yield running


@pytest.fixture
def client(stack: tuple[Settings, StackState]) -> Iterator[Toxiproxy]:
    """toxiproxy-python bound to the stack's server; the server as it was afterwards."""
    _, state = stack
    assert state.toxiproxy is not None
    address = urlsplit(state.toxiproxy.url)
    made = Toxiproxy()
    made.update_api_consumer(address.hostname, address.port)
    yield made
    made.reset()  # every proxy enabled, every toxic removed


def test_a_toxic_added_by_toxiproxy_python_mid_run_is_reported_as_left_behind(
    stack: tuple[Settings, StackState], client: Toxiproxy
) -> None:
    settings, _ = stack
    added: list[str] = []

    def report(line: str) -> None:  # the runner's progress: the second phase has begun
        if line.startswith("phase steady") and not added:
            client.get_proxy("pg_wallet").add_toxic(
                type="latency", name="by_hand", attributes={"latency": 5}
            )
            added.append("by_hand")

    scenario = Scenario.model_validate(SCENARIO)
    record = asyncio.run(run_scenario(scenario, settings, reuse=True, report=report))
    assert added, "the run never reported its second phase"
    assert record.outcome.exit_code() == EXIT_INVARIANT, record.outcome.reasons()
    assert any("toxic by_hand (latency, downstream) on proxy pg_wallet" in line
               for line in record.residue), record.residue  # fmt: skip
    [faults] = [i for i in record.outcome.invariants if i.name == "no_toxic_left"]
    assert not faults.passed
    assert any("by_hand" in v for v in faults.violations)


def state_of(proxy: Any, toxics: Iterable[Any]) -> dict[str, Any]:
    """A proxy as either client reads it (their objects have the same attribute names)."""
    return {
        "listen": proxy.listen,
        "upstream": proxy.upstream,
        "enabled": proxy.enabled,
        "toxics": sorted(
            (t.name, t.type, t.stream, float(t.toxicity), t.attributes) for t in toxics
        ),
    }


def seen_by_toxiproxy_python(client: Toxiproxy) -> dict[str, Any]:
    return {
        name: state_of(proxy, proxy.toxics().values()) for name, proxy in client.proxies().items()
    }


async def seen_by_the_harness(url: str) -> dict[str, Any]:
    async with ToxiproxyClient(url) as harness:
        found = await harness.proxies()
    return {name: state_of(proxy, proxy.toxics) for name, proxy in found.items()}


async def changed_by_the_harness(url: str) -> None:
    async with ToxiproxyClient(url) as harness:
        await harness.disable("pg_p2p")
        await harness.add_toxic(
            "pg_swap", "bandwidth", {"rate": 64}, name="slow_swap", stream="upstream"
        )


def test_both_clients_agree_on_every_proxy_whoever_changed_it(
    stack: tuple[Settings, StackState], client: Toxiproxy
) -> None:
    _, state = stack
    assert state.toxiproxy is not None
    url = state.toxiproxy.url
    # changed by toxiproxy-python
    client.get_proxy("pg_wallet").disable()
    client.get_proxy("pg_deposits").add_toxic(
        type="latency", name="by_hand", toxicity=0.5, attributes={"latency": 50, "jitter": 5}
    )
    # and by the harness
    asyncio.run(changed_by_the_harness(url))
    theirs = seen_by_toxiproxy_python(client)
    ours = asyncio.run(seen_by_the_harness(url))
    assert theirs == ours
    assert set(ours) == set(state.links)
    assert {name for name, p in ours.items() if not p["enabled"]} == {"pg_wallet", "pg_p2p"}
    assert [t[0] for t in ours["pg_deposits"]["toxics"]] == ["by_hand"]
    assert [t[:3] for t in ours["pg_swap"]["toxics"]] == [("slow_swap", "bandwidth", "upstream")]
