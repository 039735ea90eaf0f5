"""Loopback ports: find free ones, check that explicitly requested ones are free."""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

from chaos.errors import PortInUseError

LOOPBACK = "127.0.0.1"


#: where the kernel takes the local ports of outgoing connections from (Linux's default)
_EPHEMERAL_DEFAULT = (32768, 60999)
#: the ports :func:`free_port` picks from, below the ephemeral range
_CHOSEN_LOW = 20000


def free_port() -> int:
    """A TCP port on loopback that nothing uses right now, for a server started later.

    Picked at random *below* the kernel's ephemeral range: a port from that range (what
    binding to port 0 gives) may be taken, before the server binds it, as the local port
    of any of the thousands of connections a load test opens.
    """
    low, high = _CHOSEN_LOW, _ephemeral_range()[0] - 1
    for _ in range(50):
        port = random.randint(low, high)
        if _bindable(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a crowded machine
        sock.bind((LOOPBACK, 0))
        found: int = sock.getsockname()[1]
        return found


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return not is_listening(port, timeout=0.1)


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return _EPHEMERAL_DEFAULT


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
