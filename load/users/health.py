"""The load generator's own efficiency probe: liveness as fast as it can go."""

from __future__ import annotations

from locust import task

from isolation_harness.load.users.api import ApiUser


class LivenessUser(ApiUser):
    """Only ``GET /health/live``, no wait: its rate shows what this Locust process can do."""

    think_time = (0.0, 0.0)

    @task
    def live(self) -> None:
        self.client.get("/health/live", name="health.live")
