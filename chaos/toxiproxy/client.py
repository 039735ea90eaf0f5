"""Async client for the HTTP API of Shopify's Toxiproxy (v2; written against server 2.12).

Every method maps to one API call. Errors come out as the harness's own exceptions
(:mod:`chaos.errors`), never as aiohttp ones:

* an invalid argument is refused locally with :class:`~chaos.errors.ConfigError`
  before anything is sent;
* 404 becomes :class:`~chaos.errors.ProxyNotFound` or :class:`~chaos.errors.ToxicNotFound`,
  409 :class:`~chaos.errors.AlreadyExists`, any other error status
  :class:`~chaos.errors.ToxiproxyError` (all carry the server's message and HTTP status);
* a server that cannot be reached or does not answer in time gives
  :class:`~chaos.errors.ComponentError`.

Updates use ``PATCH`` (the server logs ``POST`` on those endpoints as deprecated since 2.6).

*Why one module of this length:* it mirrors one HTTP API, one method per call, with its
argument checks and its error mapping; split, each part would repeat the mapping.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp
from yarl import URL

from isolation_harness.chaos.errors import (
    AlreadyExists,
    ComponentError,
    ConfigError,
    ProxyNotFound,
    ToxicNotFound,
    ToxiproxyError,
)

__all__ = [
    "STREAMS",
    "TOXIC_ATTRIBUTES",
    "TOXIC_TYPES",
    "Proxy",
    "ProxySpec",
    "Toxic",
    "ToxiproxyClient",
]

#: The attributes each built-in toxic type understands (the server silently ignores others).
TOXIC_ATTRIBUTES: Mapping[str, frozenset[str]] = {
    "latency": frozenset({"latency", "jitter"}),
    "bandwidth": frozenset({"rate"}),
    "slow_close": frozenset({"delay"}),
    "timeout": frozenset({"timeout"}),
    "reset_peer": frozenset({"timeout"}),
    "slicer": frozenset({"average_size", "size_variation", "delay"}),
    "limit_data": frozenset({"bytes"}),
}

#: The toxic types built into the Toxiproxy server.
TOXIC_TYPES: frozenset[str] = frozenset(TOXIC_ATTRIBUTES)

#: The directions a toxic can act on: ``upstream`` is client → server, ``downstream``
#: server → client.
STREAMS: frozenset[str] = frozenset({"upstream", "downstream"})

_ALL_ATTRIBUTES: frozenset[str] = frozenset().union(*TOXIC_ATTRIBUTES.values())

_T = TypeVar("_T")

_UNREACHABLE_FIX = (
    "start it with `harness up`, or set TOXIPROXY_URL to the address of a running Toxiproxy server"
)


@dataclass(frozen=True)
class Toxic:
    """A toxic active on a proxy, as the server reports it."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any]


@dataclass(frozen=True)
class Proxy:
    """A proxy on the Toxiproxy server, with its active toxics."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[Toxic, ...] = ()

    @property
    def listen_port(self) -> int:
        """The TCP port of ``listen`` (``"127.0.0.1:12345"`` or ``"[::]:123"``).

        It is 0 for a proxy created disabled on port 0: the server picks the port only
        when the proxy starts.
        """
        return _port_of(self.listen)


@dataclass(frozen=True)
class ProxySpec:
    """A proxy to create with :meth:`ToxiproxyClient.populate`."""

    name: str
    listen: str
    upstream: str
    enabled: bool = True


class ToxiproxyClient:
    """Async client for one Toxiproxy server.

    ``url`` is the API's base address, e.g. ``"http://127.0.0.1:8474"``; ``timeout`` the
    limit in seconds for each call. Without ``session`` the client opens its own on first
    use and closes it in :meth:`close`; a session passed in stays the caller's to close.
    Use it as ``async with ToxiproxyClient(url) as client: ...``.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        base = URL(url.strip())
        if base.scheme not in ("http", "https") or not base.host:
            raise ConfigError(
                f"invalid Toxiproxy URL {url!r}",
                "give the API address with scheme, host and port, e.g. http://127.0.0.1:8474",
            )
        if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
            raise ConfigError(
                f"invalid Toxiproxy timeout {timeout!r}", "give a positive number of seconds"
            )
        self._base = base.with_query(None).with_fragment(None)
        self._url = str(self._base).rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=float(timeout))
        self._session = session
        self._owns_session = session is None
        self._closed = False

    @property
    def url(self) -> str:
        """The base URL of the Toxiproxy API, without trailing slash."""
        return self._url

    def __repr__(self) -> str:
        return f"ToxiproxyClient({self._url!r})"

    async def close(self) -> None:
        """Close the HTTP session if the client opened it; the client is unusable after."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- server ------------------------------------------------------------------------

    async def version(self) -> str:
        """The server's version string (e.g. ``"2.12.0"``)."""
        data = await self._request("GET", ("version",), raw=True)
        text = data.strip() if isinstance(data, str) else ""
        try:
            parsed = json.loads(text)
        except ValueError:
            return text  # old servers answer the bare version as text
        if isinstance(parsed, dict) and isinstance(parsed.get("version"), str):
            return str(parsed["version"])
        return text

    async def reset(self) -> None:
        """Re-enable every proxy and remove every toxic."""
        await self._request("POST", ("reset",))

    # -- proxies -----------------------------------------------------------------------

    async def proxies(self) -> dict[str, Proxy]:
        """All proxies on the server, by name."""
        data = await self._request("GET", ("proxies",))
        items = _expect(data, dict, "GET /proxies")
        return {name: _parse_proxy(item) for name, item in items.items()}

    async def get_proxy(self, name: str) -> Proxy:
        """The proxy called ``name``, with its toxics."""
        path = ("proxies", _check_name(name, "proxy"))
        return _parse_proxy(await self._request("GET", path))

    async def create_proxy(
        self, name: str, *, listen: str, upstream: str, enabled: bool = True
    ) -> Proxy:
        """Create a proxy; ``listen`` may use port 0 to let the server pick a free port."""
        body = _proxy_body(ProxySpec(name, listen, upstream, enabled))
        return _parse_proxy(await self._request("POST", ("proxies",), body))

    async def populate(self, proxies: Sequence[ProxySpec]) -> list[Proxy]:
        """Create or replace several proxies at once; returns them in the order given.

        The server leaves a proxy alone when its ``listen`` and ``upstream`` are unchanged
        and replaces it (dropping its connections and toxics) when they differ.
        """
        body = [_proxy_body(spec) for spec in proxies]
        data = await self._request("POST", ("populate",), body)
        items = _expect(data, dict, "POST /populate").get("proxies") or []
        return [_parse_proxy(item) for item in _expect(items, list, "POST /populate")]

    async def update_proxy(
        self,
        name: str,
        *,
        listen: str | None = None,
        upstream: str | None = None,
        enabled: bool | None = None,
    ) -> Proxy:
        """Change the given fields of a proxy; changing an address restarts it."""
        body: dict[str, Any] = {}
        if listen is not None:
            body["listen"] = _check_address(listen, "listen")
        if upstream is not None:
            body["upstream"] = _check_address(upstream, "upstream")
        if enabled is not None:
            body["enabled"] = _check_bool(enabled, "enabled")
        if not body:
            raise ConfigError(
                f"nothing to update on proxy {name!r}", "give listen, upstream or enabled"
            )
        path = ("proxies", _check_name(name, "proxy"))
        return _parse_proxy(await self._request("PATCH", path, body))

    async def enable(self, name: str) -> Proxy:
        """Enable a proxy so it accepts connections again."""
        return await self.update_proxy(name, enabled=True)

    async def disable(self, name: str) -> Proxy:
        """Disable a proxy: close its listener and drop its open connections."""
        return await self.update_proxy(name, enabled=False)

    async def delete_proxy(self, name: str) -> None:
        """Delete a proxy and its toxics."""
        await self._request("DELETE", ("proxies", _check_name(name, "proxy")))

    # -- toxics ------------------------------------------------------------------------

    async def toxics(self, proxy: str) -> list[Toxic]:
        """The toxics active on ``proxy``."""
        path = ("proxies", _check_name(proxy, "proxy"), "toxics")
        data = await self._request("GET", path)
        return [_parse_toxic(item) for item in _expect(data or [], list, "toxic list")]

    async def add_toxic(
        self,
        proxy: str,
        type: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        stream: str = "downstream",
        toxicity: float = 1.0,
    ) -> Toxic:
        """Add a toxic to ``proxy``; its name defaults to ``"<type>_<stream>"``.

        ``attributes`` must be among those of the type (see :data:`TOXIC_ATTRIBUTES`);
        ``toxicity`` is the probability, 0 to 1, that a connection is affected.
        """
        if type not in TOXIC_TYPES:
            raise ConfigError(
                f"unknown toxic type {type!r}",
                f"use one of {', '.join(sorted(TOXIC_TYPES))}",
            )
        if stream not in STREAMS:
            raise ConfigError(
                f"invalid toxic stream {stream!r}",
                "use 'upstream' (client to server) or 'downstream' (server to client)",
            )
        attrs = _check_attributes(attributes or {}, TOXIC_ATTRIBUTES[type], f"toxic type {type!r}")
        body: dict[str, Any] = {
            "type": type,
            "stream": stream,
            "toxicity": _check_toxicity(toxicity),
            "attributes": attrs,
        }
        if name is not None:
            body["name"] = _check_name(name, "toxic")
        path = ("proxies", _check_name(proxy, "proxy"), "toxics")
        return _parse_toxic(await self._request("POST", path, body))

    async def get_toxic(self, proxy: str, name: str) -> Toxic:
        """The toxic called ``name`` on ``proxy``."""
        path = ("proxies", _check_name(proxy, "proxy"), "toxics", _check_name(name, "toxic"))
        return _parse_toxic(await self._request("GET", path, not_found=ToxicNotFound))

    async def update_toxic(
        self,
        proxy: str,
        name: str,
        *,
        attributes: Mapping[str, Any] | None = None,
        toxicity: float | None = None,
    ) -> Toxic:
        """Change some attributes and/or the toxicity of a toxic; others keep their values."""
        body: dict[str, Any] = {}
        if attributes:
            body["attributes"] = _check_attributes(attributes, _ALL_ATTRIBUTES, "any toxic type")
        if toxicity is not None:
            body["toxicity"] = _check_toxicity(toxicity)
        if not body:
            raise ConfigError(
                f"nothing to update on toxic {name!r} of proxy {proxy!r}",
                "give attributes or toxicity",
            )
        path = ("proxies", _check_name(proxy, "proxy"), "toxics", _check_name(name, "toxic"))
        return _parse_toxic(await self._request("PATCH", path, body, not_found=ToxicNotFound))

    async def remove_toxic(self, proxy: str, name: str) -> None:
        """Remove the toxic called ``name`` from ``proxy``."""
        path = ("proxies", _check_name(proxy, "proxy"), "toxics", _check_name(name, "toxic"))
        await self._request("DELETE", path, not_found=ToxicNotFound)

    # -- transport ---------------------------------------------------------------------

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def _request(
        self,
        method: str,
        segments: tuple[str, ...],
        body: Any = None,
        *,
        not_found: type[ToxiproxyError] = ProxyNotFound,
        raw: bool = False,
    ) -> Any:
        """Send one API call; return its decoded JSON (or text if ``raw``, None if empty)."""
        path = "/" + "/".join(segments)
        where = f"{method} {path}"
        url = self._base.joinpath(*segments)
        data: bytes | None = None
        headers: dict[str, str] = {"Accept": "application/json"}
        if body is not None:
            try:
                data = json.dumps(body, allow_nan=False).encode()
            except (TypeError, ValueError) as exc:
                raise ConfigError(
                    f"cannot send {where} to Toxiproxy: {exc}", "give JSON-compatible values"
                ) from None
            headers["Content-Type"] = "application/json"
        session = self._get_session()
        try:
            async with session.request(
                method, url, data=data, headers=headers, timeout=self._timeout
            ) as response:
                status = response.status
                text = await response.text(errors="replace")
        except TimeoutError:
            raise ComponentError(
                f"the Toxiproxy server at {self._url} is unreachable: {where} got no answer "
                f"within {self._timeout.total:g} s",
                _UNREACHABLE_FIX,
            ) from None
        except aiohttp.ClientError as exc:
            reason = str(exc) or type(exc).__name__
            raise ComponentError(
                f"the Toxiproxy server at {self._url} is unreachable: {where} failed ({reason})",
                _UNREACHABLE_FIX,
            ) from None
        if status >= 400:
            raise _api_error(status, text, where, not_found)
        if raw:
            return text
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise ComponentError(
                f"the server at {self._url} answered {where} with something other than JSON: "
                f"{text[:200]!r}",
                "check that TOXIPROXY_URL points at a Toxiproxy API",
            ) from None


# -- helpers -------------------------------------------------------------------------------


def _api_error(
    status: int, text: str, where: str, not_found: type[ToxiproxyError]
) -> ToxiproxyError:
    """The exception for an error answer, carrying the server's own message."""
    message = text.strip() or f"HTTP {status}"
    try:
        parsed = json.loads(text)
    except ValueError:
        pass
    else:
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
            message = parsed["error"]
    problem = f"Toxiproxy: {message} ({where})"
    if status == 404:
        # A call on a toxic gets "proxy not found" when the proxy itself is missing.
        cls: type[ToxiproxyError] = not_found
        if "proxy not found" in message:
            cls = ProxyNotFound
        elif "toxic not found" in message:
            cls = ToxicNotFound
        what = "proxy" if cls is ProxyNotFound else "toxic"
        return cls(problem, f"check the {what} name, or create it first", status=status)
    if status == 409:
        return AlreadyExists(
            problem, "choose another name, or delete the existing one first", status=status
        )
    if status == 405:
        return ToxiproxyError(problem, "use Toxiproxy 2.6 or newer", status=status)
    return ToxiproxyError(problem, status=status)


def _expect(value: Any, kind: type[_T], what: str) -> _T:
    """``value`` if it has the JSON type expected from the server, else ComponentError."""
    if not isinstance(value, kind):
        raise ComponentError(
            f"unexpected answer from Toxiproxy to {what}: {value!r}",
            "check that the server is Toxiproxy 2.x",
        )
    return value


def _parse_toxic(data: Any) -> Toxic:
    """A :class:`Toxic` from its JSON form."""
    item = _expect(data, dict, "a toxic")
    try:
        return Toxic(
            name=str(item["name"]),
            type=str(item["type"]),
            stream=str(item["stream"]),
            toxicity=float(item["toxicity"]),
            attributes=dict(item.get("attributes") or {}),
        )
    except (KeyError, TypeError, ValueError):
        raise ComponentError(
            f"unexpected toxic from Toxiproxy: {item!r}", "check that the server is Toxiproxy 2.x"
        ) from None


def _parse_proxy(data: Any) -> Proxy:
    """A :class:`Proxy` from its JSON form."""
    item = _expect(data, dict, "a proxy")
    try:
        return Proxy(
            name=str(item["name"]),
            listen=str(item["listen"]),
            upstream=str(item["upstream"]),
            enabled=bool(item["enabled"]),
            toxics=tuple(_parse_toxic(t) for t in item.get("toxics") or ()),
        )
    except KeyError:
        raise ComponentError(
            f"unexpected proxy from Toxiproxy: {item!r}", "check that the server is Toxiproxy 2.x"
        ) from None


def _port_of(address: str) -> int:
    """The port of ``host:port`` or ``[v6]:port``."""
    _, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"no port in address {address!r}")
    return int(port)


def _proxy_body(spec: ProxySpec) -> dict[str, Any]:
    """The JSON body describing ``spec``, after checking its fields."""
    return {
        "name": _check_name(spec.name, "proxy"),
        "listen": _check_address(spec.listen, "listen"),
        "upstream": _check_address(spec.upstream, "upstream"),
        "enabled": _check_bool(spec.enabled, "enabled"),
    }


def _check_name(name: str, what: str) -> str:
    """``name`` if usable as a proxy or toxic name (non-empty, no slash)."""
    if not isinstance(name, str) or not name or "/" in name:
        raise ConfigError(
            f"invalid {what} name {name!r}", "give a non-empty name without '/' in it"
        )
    return name


def _check_address(address: str, what: str) -> str:
    """``address`` if it looks like ``host:port``."""
    try:
        _port_of(address)
    except (ValueError, AttributeError, TypeError):
        raise ConfigError(
            f"invalid {what} address {address!r}",
            "give host:port, e.g. 127.0.0.1:5432 (port 0 lets the server pick one)",
        ) from None
    return address


def _check_bool(value: bool, what: str) -> bool:
    """``value`` if it is a bool."""
    if not isinstance(value, bool):
        raise ConfigError(f"invalid {what} value {value!r}", "give true or false")
    return value


def _check_toxicity(toxicity: float) -> float:
    """``toxicity`` as a float if it is a probability in 0..1."""
    if (
        isinstance(toxicity, bool)
        or not isinstance(toxicity, int | float)
        or not 0.0 <= toxicity <= 1.0
    ):
        raise ConfigError(
            f"invalid toxicity {toxicity!r}",
            "give the probability a connection is affected, from 0.0 to 1.0",
        )
    return float(toxicity)


def _check_attributes(
    attributes: Mapping[str, Any], known: frozenset[str], owner: str
) -> dict[str, Any]:
    """``attributes`` as a dict, if every name is in ``known`` (those of ``owner``)."""
    unknown = sorted(set(attributes) - known)
    if unknown:
        raise ConfigError(
            f"unknown attribute(s) {', '.join(map(repr, unknown))} for {owner}",
            f"use {', '.join(sorted(known))}",
        )
    return dict(attributes)
