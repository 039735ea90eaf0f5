"""Client of the price source (being written)."""

from __future__ import annotations

import aiohttp


class PriceSource:
    def __init__(self, http: aiohttp.ClientSession, base_url: str, timeout: float) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
