"""Loopback ports: pick free ones for servers started later, see whether one listens."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

#: the host every process of the local stack listens on
LOOPBACK = "127.0.0.1"


#: where the kernel takes the local ports of outgoing connections from (Linux's default)
_EPHEMERAL_DEFAULT = (32768, 60999)
#: the ports :func:`free_port` picks from, below the ephemeral range
_CHOSEN_LOW = 20000
#: the ports :func:`free_port` handed out lately, to any process of this user: a port is
#: chosen seconds before its server binds it, and another stack starting meanwhile must not
#: choose it too (seen: a Toxiproxy found its port taken by another stack's PostgreSQL).
#: Ports are the machine's, so the file is too, not under a process's own ``TMPDIR``; it is
#: opened without following a link, and used only if this user owns it.
RESERVATIONS = Path("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()) / (  # noqa: S108
    f"harness-ports-{os.getuid()}.json"
)
#: how long a port stays reserved: far longer than any server takes to start and bind it
RESERVE_SECONDS = 120.0


def free_port() -> int:
    """A TCP port on loopback that nothing uses right now, for a server started later.

    Picked at random *below* the kernel's ephemeral range: a port from that range (what
    binding to port 0 gives) may be taken, before the server binds it, as the local port
    of any of the thousands of connections a load test opens.

    A port handed out is reserved for :data:`RESERVE_SECONDS` (in :data:`RESERVATIONS`,
    shared by every process of this user), so two stacks starting at once never pick the same
    one before either has bound it.
    """
    low, high = _CHOSEN_LOW, _ephemeral_range()[0] - 1
    with _reserved() as reserved:
        for _ in range(50):
            port = random.randint(low, high)
            if port not in reserved and _bindable(port):
                break
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a crowded machine
                sock.bind((LOOPBACK, 0))
                port = sock.getsockname()[1]
        reserved[port] = time.time() + RESERVE_SECONDS
        return port


@contextlib.contextmanager
def _reserved() -> Iterator[dict[int, float]]:
    """The unexpired reservations (port: until when), locked against every other process
    for the block, and written back after it. Unreadable content counts as none."""
    try:
        fd = os.open(RESERVATIONS, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError:  # a link, or a file this user may not write: no reservations
        yield {}
        return
    if os.fstat(fd).st_uid != os.getuid():
        os.close(fd)
        yield {}
        return
    with open(fd, "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        handle.seek(0)
        try:
            stored = {int(port): float(until) for port, until in json.loads(handle.read()).items()}
        except (ValueError, TypeError, AttributeError):
            stored = {}
        now = time.time()
        reserved = {port: until for port, until in stored.items() if until > now}
        yield reserved
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(reserved))


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


def wait_closed(port: int, deadline: float, host: str = LOOPBACK) -> bool:
    """Poll until nothing listens on ``host:port`` or ``deadline`` (monotonic) passes."""
    while time.monotonic() < deadline:
        if not is_listening(port, host, timeout=0.2):
            return True
        time.sleep(0.05)
    return not is_listening(port, host, timeout=0.2)
