"""The HTTP side every harness user shares: Locust's ``FastHttpUser``, set for this API,
and seeded (``load/users/seeded.py``): every random decision replays from the run's seed.

- **No cookie jar.** The app authenticates with bearer tokens and sets no cookies, so the
  jar would only cost: geventhttpclient reads it before and writes it after every request
  (about a tenth of a Locust process's time per request; `bench/loadgen_efficiency.py`).
  A cookie the server might set is never sent back.
- **Timeouts.** A request the app leaves hanging (a starved pool in the legacy design)
  fails after :attr:`network_timeout`, so it is counted in its phase instead of vanishing
  until the run ends.
"""

from __future__ import annotations

from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment

from isolation_harness.load.kinds import CLIENT_TIMEOUT
from isolation_harness.load.users.seeded import SeededUser


class ApiUser(SeededUser, FastHttpUser):
    """A seeded ``FastHttpUser`` without cookies and with short timeouts (see the module)."""

    abstract = True
    network_timeout = CLIENT_TIMEOUT
    connection_timeout = CLIENT_TIMEOUT

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        # FastHttpSession -> geventhttpclient's UserAgent, which skips the jar when None.
        self.client.client.cookiejar = None
