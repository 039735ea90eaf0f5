"""The stack the faults act on: its Toxiproxy links, database, app and provider fakes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from isolation_harness.chaos.errors import ConfigError
from isolation_harness.chaos.stack.postgres import LocalCluster
from isolation_harness.chaos.stack.state import StackState
from isolation_harness.chaos.toxiproxy.client import ToxiproxyClient
from isolation_harness.topology.ports import LOOPBACK
from isolation_harness.topology.services import DEFAULT_VARIANT, Variant


@dataclass
class FaultContext:
    """What a fault needs to act: given to each of its calls, never kept by it."""

    toxiproxy: ToxiproxyClient
    #: link name (``pg_p2p``, ``payments``…) -> the proxy's name on the Toxiproxy server
    proxies: Mapping[str, str]
    variant: Variant
    #: None: database faults are not supported (external server)
    cluster: LocalCluster | None
    #: the app's base URL; empty when the stack runs no app
    app_url: str
    admin_token: str
    http: aiohttp.ClientSession
    #: ``"payments"`` / ``"prices"`` -> base URL of the fake (its ``/_control`` API)
    fake_urls: Mapping[str, str]

    @classmethod
    def from_stack(
        cls, state: StackState, toxiproxy: ToxiproxyClient, http: aiohttp.ClientSession
    ) -> FaultContext:
        """The context of the stack ``harness up`` recorded in ``state``."""
        pg = state.postgres
        cluster = None
        if pg is not None and pg.kind == "local" and pg.data_dir and pg.bin_dir:
            cluster = LocalCluster(pg.bin_dir, pg.data_dir, pg.port)
        app = state.app
        return cls(
            toxiproxy=toxiproxy,
            # The stack names each proxy after its link.
            proxies={name: name for name in state.links},
            variant=app.variant if app is not None else DEFAULT_VARIANT,
            cluster=cluster,
            app_url=app.url.rstrip("/") if app is not None else "",
            admin_token=app.admin_token if app is not None else "",
            http=http,
            fake_urls={
                target: f"http://{LOOPBACK}:{port}" for target, port in state.fake_ports.items()
            },
        )

    def proxy_for(self, link: str) -> str:
        """The proxy carrying ``link`` on this stack's Toxiproxy server."""
        try:
            return self.proxies[link]
        except KeyError:
            known = ", ".join(sorted(self.proxies)) or "none"
            raise ConfigError(
                f"the stack has no proxy for link {link!r}", f"links of this stack: {known}"
            ) from None
