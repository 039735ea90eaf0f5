"""Loopback ports: find free ones, check that explicitly requested ones are free."""

from __future__ import annotations

import socket
import time

from chaos.errors import PortInUseError

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def is_listening(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_free(port: int, what: str, variable: str) -> int:
    """Return ``port`` if it can be bound on loopback, else raise :class:`PortInUseError`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            raise PortInUseError(
                f"port {port} for {what} is already in use ({exc.strerror})",
                f"choose another port in {variable} or leave it unset to pick a free one",
            ) from exc
    return port


def wait_closed(port: int, deadline: float, host: str = LOOPBACK) -> bool:
    """Poll until nothing listens on ``host:port`` or ``deadline`` (monotonic) passes."""
    while time.monotonic() < deadline:
        if not is_listening(port, host, timeout=0.2):
            return True
        time.sleep(0.05)
    return not is_listening(port, host, timeout=0.2)
