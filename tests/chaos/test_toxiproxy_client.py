"""Tests of chaos.toxiproxy.client against a real Toxiproxy server (no mocks)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from isolation_harness.chaos.errors import (
    AlreadyExists,
    ComponentError,
    ConfigError,
    ProxyNotFound,
    ToxicNotFound,
    ToxiproxyError,
)
from isolation_harness.chaos.toxiproxy.client import (
    TOXIC_TYPES,
    Proxy,
    ProxySpec,
    Toxic,
    ToxiproxyClient,
)

LISTEN_ANY_PORT = "127.0.0.1:0"

# Every toxic type, with a value for each of its attributes.
TOXIC_EXAMPLES: dict[str, dict[str, int]] = {
    "latency": {"latency": 10, "jitter": 2},
    "bandwidth": {"rate": 100},
    "slow_close": {"delay": 50},
    "timeout": {"timeout": 100},
    "reset_peer": {"timeout": 100},
    "slicer": {"average_size": 64, "size_variation": 8, "delay": 10},
    "limit_data": {"bytes": 1024},
}

StartServer = Callable[..., Awaitable[str]]


# -- local TCP servers -------------------------------------------------------------------


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """Start TCP servers on 127.0.0.1 and return their "host:port".

    By default a server echoes what it reads, prefixed with ``prefix``; with ``silent=True``
    it accepts connections and never answers.
    """
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []
    tasks: set[asyncio.Task[Any]] = set()

    async def start(prefix: bytes = b"", *, silent: bool = False) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            tasks.add(asyncio.current_task())  # type: ignore[arg-type]
            writers.append(writer)
            with contextlib.suppress(ConnectionError):
                while data := await reader.read(65536):
                    if not silent:
                        writer.write(prefix + data)
                        await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"

    yield start

    for server in servers:
        server.close()
    for writer in writers:
        writer.close()
    await asyncio.gather(*tasks, return_exceptions=True)
    for writer in writers:
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    for server in servers:
        await server.wait_closed()


@pytest.fixture
async def upstream(start_server: StartServer) -> str:
    """The address of a TCP echo server."""
    return await start_server()


@contextlib.asynccontextmanager
async def connect(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def round_trip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, payload: bytes = b"ping"
) -> bytes:
    writer.write(payload)
    await writer.drain()
    data = b""
    while len(data) < len(payload):
        chunk = await asyncio.wait_for(reader.read(65536), timeout=10)
        if not chunk:
            break
        data += chunk
    return data


async def echo_once(port: int, payload: bytes = b"ping") -> bytes:
    async with connect(port) as (reader, writer):
        return await round_trip(reader, writer, payload)


async def timed_round_trip(port: int) -> float:
    """Seconds one echo round trip takes over a fresh connection (connecting excluded)."""
    async with connect(port) as (reader, writer):
        start = time.monotonic()
        assert await round_trip(reader, writer) == b"ping"
        return time.monotonic() - start


async def assert_refused(port: int) -> None:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    pytest.fail(f"a connection to port {port} was accepted; expected it to be refused")


async def new_proxy(client: ToxiproxyClient, name: str, upstream: str) -> Proxy:
    return await client.create_proxy(name, listen=LISTEN_ANY_PORT, upstream=upstream)


# -- server and proxies ------------------------------------------------------------------


async def test_version_is_the_servers(toxiproxy: ToxiproxyClient, toxiproxy_url: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{toxiproxy_url}/version") as response,
    ):
        expected = json.loads(await response.text())["version"]
    assert await toxiproxy.version() == expected
    assert expected


async def test_create_get_list_delete_proxy(toxiproxy: ToxiproxyClient, upstream: str) -> None:
    proxy = await new_proxy(toxiproxy, "db", upstream)

    assert proxy.name == "db"
    assert proxy.upstream == upstream
    assert proxy.enabled is True
    assert proxy.toxics == ()
    assert proxy.listen.startswith("127.0.0.1:")
    assert proxy.listen_port > 0  # the server picked a real port for ":0"
    assert await echo_once(proxy.listen_port) == b"ping"

    assert await toxiproxy.get_proxy("db") == proxy
    assert await toxiproxy.proxies() == {"db": proxy}

    await toxiproxy.delete_proxy("db")
    assert await toxiproxy.proxies() == {}
    with pytest.raises(ProxyNotFound):
        await toxiproxy.get_proxy("db")
    await assert_refused(proxy.listen_port)


async def test_create_disabled_proxy(toxiproxy: ToxiproxyClient, upstream: str) -> None:
    proxy = await toxiproxy.create_proxy(
        "off", listen=LISTEN_ANY_PORT, upstream=upstream, enabled=False
    )
    assert proxy.enabled is False
    assert (await toxiproxy.get_proxy("off")).enabled is False


def test_listen_port_parsing() -> None:
    assert Proxy("a", "127.0.0.1:12345", "x:1", True).listen_port == 12345
    assert Proxy("a", "[::]:123", "x:1", True).listen_port == 123
    assert Proxy("a", "localhost:8", "x:1", True).listen_port == 8


async def test_populate_creates_proxies_in_order(
    toxiproxy: ToxiproxyClient, start_server: StartServer
) -> None:
    first, second = await start_server(b"1:"), await start_server(b"2:")

    created = await toxiproxy.populate(
        [
            ProxySpec("one", LISTEN_ANY_PORT, first),
            ProxySpec("two", LISTEN_ANY_PORT, second),
            ProxySpec("three", LISTEN_ANY_PORT, second, enabled=False),
        ]
    )

    assert [(p.name, p.upstream, p.enabled) for p in created] == [
        ("one", first, True),
        ("two", second, True),
        ("three", second, False),
    ]
    assert await toxiproxy.proxies() == {p.name: p for p in created}
    assert await echo_once(created[0].listen_port) == b"1:ping"
    assert await echo_once(created[1].listen_port) == b"2:ping"


async def test_populate_reports_the_servers_error(
    toxiproxy: ToxiproxyClient, upstream: str
) -> None:
    # Listening on the echo server's own address fails on the server side.
    with pytest.raises(ToxiproxyError) as caught:
        await toxiproxy.populate([ProxySpec("clash", listen=upstream, upstream=upstream)])
    assert type(caught.value) is ToxiproxyError
    assert caught.value.status == 500
    assert "address already in use" in str(caught.value)
    assert "POST /populate" in str(caught.value)
    assert await toxiproxy.proxies() == {}


async def test_update_proxy_upstream(toxiproxy: ToxiproxyClient, start_server: StartServer) -> None:
    first, second = await start_server(b"1:"), await start_server(b"2:")
    proxy = await new_proxy(toxiproxy, "svc", first)
    assert await echo_once(proxy.listen_port) == b"1:ping"

    updated = await toxiproxy.update_proxy("svc", upstream=second)

    assert updated.upstream == second
    assert updated.enabled is True
    assert await toxiproxy.get_proxy("svc") == updated
    assert await echo_once(updated.listen_port) == b"2:ping"


async def test_update_proxy_needs_a_field(toxiproxy: ToxiproxyClient, upstream: str) -> None:
    await new_proxy(toxiproxy, "svc", upstream)
    with pytest.raises(ConfigError, match="nothing to update"):
        await toxiproxy.update_proxy("svc")


async def test_disable_refuses_and_drops_connections_enable_restores(
    toxiproxy: ToxiproxyClient, upstream: str
) -> None:
    proxy = await new_proxy(toxiproxy, "svc", upstream)
    port = proxy.listen_port

    async with connect(port) as (reader, writer):
        assert await round_trip(reader, writer) == b"ping"

        disabled = await toxiproxy.disable("svc")

        assert disabled.enabled is False
        assert (await toxiproxy.get_proxy("svc")).enabled is False
        await assert_refused(port)
        # The open connection is closed by the proxy: EOF, or a reset.
        try:
            leftover = await asyncio.wait_for(reader.read(65536), timeout=10)
        except ConnectionResetError:
            leftover = b""
        assert leftover == b""

    enabled = await toxiproxy.enable("svc")

    assert enabled.enabled is True
    assert enabled.listen_port == port
    assert await echo_once(port) == b"ping"


async def test_reset_enables_proxies_and_removes_toxics(
    toxiproxy: ToxiproxyClient, upstream: str
) -> None:
    a = await new_proxy(toxiproxy, "a", upstream)
    b = await new_proxy(toxiproxy, "b", upstream)
    await toxiproxy.add_toxic("a", "latency", {"latency": 1000})
    await toxiproxy.add_toxic("b", "timeout", {"timeout": 0}, stream="upstream")
    await toxiproxy.disable("a")
    await assert_refused(a.listen_port)

    await toxiproxy.reset()

    proxies = await toxiproxy.proxies()
    assert {name: (p.enabled, p.toxics) for name, p in proxies.items()} == {
        "a": (True, ()),
        "b": (True, ()),
    }
    assert await echo_once(a.listen_port) == b"ping"
    assert await echo_once(b.listen_port) == b"ping"


# -- toxics ------------------------------------------------------------------------------


async def test_latency_toxic_delays_round_trip(toxiproxy: ToxiproxyClient, upstream: str) -> None:
    proxy = await new_proxy(toxiproxy, "svc", upstream)

    toxic = await toxiproxy.add_toxic("svc", "latency", {"latency": 300})

    assert toxic == Toxic(
        name="latency_downstream",
        type="latency",
        stream="downstream",
        toxicity=1.0,
        attributes={"latency": 300, "jitter": 0},
    )
    assert await toxiproxy.toxics("svc") == [toxic]
    assert (await toxiproxy.get_proxy("svc")).toxics == (toxic,)
    assert await timed_round_trip(proxy.listen_port) >= 0.3


async def test_update_toxic_changes_latency(toxiproxy: ToxiproxyClient, upstream: str) -> None:
    proxy = await new_proxy(toxiproxy, "svc", upstream)
    await toxiproxy.add_toxic("svc", "latency", {"latency": 50, "jitter": 5}, name="slow")

    updated = await toxiproxy.update_toxic("svc", "slow", attributes={"latency": 450})

    assert updated.attributes == {"latency": 450, "jitter": 5}  # jitter kept
    assert updated.toxicity == 1.0
    assert await toxiproxy.get_toxic("svc", "slow") == updated
    assert await timed_round_trip(proxy.listen_port) >= 0.45 - 0.005  # latency - jitter

    again = await toxiproxy.update_toxic("svc", "slow", toxicity=0.25)

    assert again.toxicity == 0.25
    assert again.attributes == {"latency": 450, "jitter": 5}  # attributes kept


@pytest.mark.parametrize("toxic_type", sorted(TOXIC_EXAMPLES))
async def test_each_toxic_type_can_be_added_and_removed(
    toxiproxy: ToxiproxyClient, upstream: str, toxic_type: str
) -> None:
    await new_proxy(toxiproxy, "svc", upstream)
    attributes = TOXIC_EXAMPLES[toxic_type]

    toxic = await toxiproxy.add_toxic(
        "svc", toxic_type, attributes, name="t", stream="upstream", toxicity=0.5
    )

    assert toxic == Toxic("t", toxic_type, "upstream", 0.5, attributes)
    assert await toxiproxy.get_toxic("svc", "t") == toxic

    await toxiproxy.remove_toxic("svc", "t")

    assert await toxiproxy.toxics("svc") == []
    with pytest.raises(ToxicNotFound):
        await toxiproxy.get_toxic("svc", "t")


def test_toxic_examples_cover_every_type() -> None:
    assert set(TOXIC_EXAMPLES) == TOXIC_TYPES


@pytest.mark.parametrize("toxicity", [0.0, 1.0])
async def test_toxicity_bounds_are_accepted(
    toxiproxy: ToxiproxyClient, upstream: str, toxicity: float
) -> None:
    await new_proxy(toxiproxy, "svc", upstream)
    toxic = await toxiproxy.add_toxic("svc", "latency", {"latency": 1}, toxicity=toxicity)
    assert toxic.toxicity == toxicity


@pytest.mark.parametrize("toxicity", [-0.01, 1.01, 2, math.nan, math.inf, True])
async def test_toxicity_out_of_range_is_refused_locally(
    toxiproxy: ToxiproxyClient, upstream: str, toxicity: Any
) -> None:
    await new_proxy(toxiproxy, "svc", upstream)
    await toxiproxy.add_toxic("svc", "latency", {"latency": 1}, name="keep", toxicity=0.5)

    with pytest.raises(ConfigError, match="toxicity"):
        await toxiproxy.add_toxic("svc", "latency", {"latency": 1}, toxicity=toxicity)
    with pytest.raises(ConfigError, match="toxicity"):
        await toxiproxy.update_toxic("svc", "keep", toxicity=toxicity)

    assert [(t.name, t.toxicity) for t in await toxiproxy.toxics("svc")] == [("keep", 0.5)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "down"}, "unknown toxic type 'down'"),
        ({"type": "latency", "stream": "both"}, "invalid toxic stream 'both'"),
        ({"type": "latency", "attributes": {"latency_ms": 5}}, "unknown attribute"),
        ({"type": "bandwidth", "attributes": {"latency": 5}}, "unknown attribute"),
        ({"type": "latency", "name": ""}, "invalid toxic name"),
    ],
)
async def test_invalid_toxic_is_refused_before_sending(
    kwargs: dict[str, Any], message: str
) -> None:
    # The client points at nothing: only local validation can produce ConfigError.
    async with ToxiproxyClient("http://127.0.0.1:9", timeout=1) as client:
        with pytest.raises(ConfigError, match=message):
            await client.add_toxic("svc", **kwargs)


async def test_update_toxic_refuses_unknown_attribute_and_empty_update() -> None:
    async with ToxiproxyClient("http://127.0.0.1:9", timeout=1) as client:
        with pytest.raises(ConfigError, match="unknown attribute"):
            await client.update_toxic("svc", "t", attributes={"latancy": 5})
        with pytest.raises(ConfigError, match="nothing to update"):
            await client.update_toxic("svc", "t")


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "expected", "message", "where"),
    [
        (lambda c: c.get_proxy("nope"), ProxyNotFound, "proxy not found", "GET /proxies/nope"),
        (
            lambda c: c.update_proxy("nope", enabled=False),
            ProxyNotFound,
            "proxy not found",
            "PATCH /proxies/nope",
        ),
        (lambda c: c.delete_proxy("nope"), ProxyNotFound, "proxy not found", "DELETE"),
        (lambda c: c.toxics("nope"), ProxyNotFound, "proxy not found", "/proxies/nope/toxics"),
        (lambda c: c.add_toxic("nope", "latency"), ProxyNotFound, "proxy not found", "POST"),
        (lambda c: c.get_toxic("nope", "t"), ProxyNotFound, "proxy not found", "GET"),
        (lambda c: c.get_toxic("svc", "nope"), ToxicNotFound, "toxic not found", "GET"),
        (
            lambda c: c.update_toxic("svc", "nope", toxicity=0.5),
            ToxicNotFound,
            "toxic not found",
            "PATCH /proxies/svc/toxics/nope",
        ),
        (
            lambda c: c.remove_toxic("svc", "nope"),
            ToxicNotFound,
            "toxic not found",
            "DELETE /proxies/svc/toxics/nope",
        ),
    ],
)
async def test_404_maps_to_not_found(
    toxiproxy: ToxiproxyClient,
    upstream: str,
    call: Callable[[ToxiproxyClient], Awaitable[object]],
    expected: type[ToxiproxyError],
    message: str,
    where: str,
) -> None:
    await new_proxy(toxiproxy, "svc", upstream)
    with pytest.raises(ToxiproxyError) as caught:
        await call(toxiproxy)
    assert type(caught.value) is expected
    assert caught.value.status == 404
    assert message in str(caught.value)
    assert where in str(caught.value)


async def test_409_maps_to_already_exists(toxiproxy: ToxiproxyClient, upstream: str) -> None:
    await new_proxy(toxiproxy, "svc", upstream)
    with pytest.raises(AlreadyExists, match="proxy already exists") as proxy_clash:
        await new_proxy(toxiproxy, "svc", upstream)
    assert proxy_clash.value.status == 409

    await toxiproxy.add_toxic("svc", "latency", name="t")
    with pytest.raises(AlreadyExists, match="toxic already exists") as toxic_clash:
        await toxiproxy.add_toxic("svc", "bandwidth", name="t")
    assert toxic_clash.value.status == 409
    assert "POST /proxies/svc/toxics" in str(toxic_clash.value)


async def test_other_server_error_is_toxiproxy_error(
    toxiproxy: ToxiproxyClient, upstream: str
) -> None:
    with pytest.raises(ToxiproxyError) as caught:
        await toxiproxy.create_proxy("clash", listen=upstream, upstream=upstream)
    assert type(caught.value) is ToxiproxyError
    assert caught.value.status == 500
    assert "address already in use" in str(caught.value)
    assert "POST /proxies" in str(caught.value)


async def test_unreachable_server_is_component_error() -> None:
    url = "http://127.0.0.1:9"  # discard port: nothing listens there
    async with ToxiproxyClient(url, timeout=5) as client:
        start = time.monotonic()
        with pytest.raises(ComponentError) as caught:
            await client.version()
        assert time.monotonic() - start < 2
    error = caught.value
    assert type(error) is ComponentError
    assert f"Toxiproxy server at {url} is unreachable" in str(error)
    assert "harness up" in error.fix
    assert "TOXIPROXY_URL" in error.fix
    assert not isinstance(error.__cause__, aiohttp.ClientError)
    assert error.__suppress_context__


async def test_silent_server_times_out_as_component_error(start_server: StartServer) -> None:
    address = await start_server(silent=True)
    async with ToxiproxyClient(f"http://{address}", timeout=0.3) as client:
        start = time.monotonic()
        with pytest.raises(ComponentError, match="unreachable") as caught:
            await client.proxies()
        assert time.monotonic() - start < 3
    assert "0.3 s" in str(caught.value)


@pytest.mark.parametrize("url", ["127.0.0.1:8474", "ftp://127.0.0.1:8474", "http://"])
def test_invalid_url_is_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="invalid Toxiproxy URL"):
        ToxiproxyClient(url)


# -- sessions ----------------------------------------------------------------------------


async def test_given_session_is_used_and_left_open(toxiproxy_url: str) -> None:
    async with aiohttp.ClientSession() as session:
        client = ToxiproxyClient(toxiproxy_url, session=session)
        assert await client.version()
        await client.close()
        assert not session.closed
        async with session.get(f"{toxiproxy_url}/version") as response:
            assert response.status == 200


async def test_own_session_is_closed(toxiproxy_url: str) -> None:
    async with ToxiproxyClient(toxiproxy_url) as client:
        await client.version()
        session = client._session
        assert session is not None
    assert session.closed
    with pytest.raises(RuntimeError, match="closed"):
        await client.version()
