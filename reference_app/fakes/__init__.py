"""Fakes of the outside providers the reference app calls, each its own aiohttp app."""
