"""An asyncio client of the Toxiproxy HTTP API (proxies, toxics, enable and disable)."""
