"""Where the stack started by ``harness up`` serves the app, read from its state file.

Plain JSON, not ``chaos.stack.state``: ``chaos`` uses ``load``, never the other way round.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from isolation_harness.topology.environment import ENV_ADMIN_TOKEN, ENV_PAYMENTS_URL
from isolation_harness.topology.ports import LOOPBACK
from isolation_harness.topology.state_file import state_path


@dataclass(frozen=True)
class StackApp:
    """The app of a running stack: its base URL and the admin token."""

    url: str
    admin_token: str


def _state(environ: Mapping[str, str]) -> dict[str, object]:
    try:
        state = json.loads(state_path(environ).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def stack_app(environ: Mapping[str, str] = os.environ) -> StackApp | None:
    """The app recorded in ``$HARNESS_STATE_DIR/stack.json`` (default ``.harness``), if any."""
    app = _state(environ).get("app")
    if not isinstance(app, dict):
        return None
    url, token = app.get("url"), app.get("admin_token")
    if not isinstance(url, str) or not isinstance(token, str) or not url or not token:
        return None
    return StackApp(url.rstrip("/"), token)


def admin_token(environ: Mapping[str, str] = os.environ) -> str | None:
    """``$HARNESS_ADMIN_TOKEN``, else the running stack's admin token, else None."""
    token = environ.get(ENV_ADMIN_TOKEN, "").strip()
    if token:
        return token
    app = stack_app(environ)
    return app.admin_token if app is not None else None


def payments_url(environ: Mapping[str, str] = os.environ) -> str | None:
    """``$HARNESS_PAYMENTS_URL``, else the running stack's payment-provider fake, else None."""
    url = environ.get(ENV_PAYMENTS_URL, "").strip().rstrip("/")
    if url:
        return url
    ports = _state(environ).get("fake_ports")
    port = ports.get("payments") if isinstance(ports, dict) else None
    return f"http://{LOOPBACK}:{port}" if isinstance(port, int) else None
