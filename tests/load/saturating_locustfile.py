"""Added beside load/locustfile.py by tests (``-f a.py,b.py``): each process that runs
users (not a master) reports CPU saturation as soon as the test starts, as Locust's own CPU
monitor does after 10 s above 90 %.

No User classes here, so the harness's users are the only ones that run.
"""

from __future__ import annotations

from typing import Any

from locust import events
from locust.env import Environment
from locust.runners import MasterRunner


@events.test_start.add_listener
def _saturated(environment: Environment, **_: Any) -> None:
    if not isinstance(environment.runner, MasterRunner):
        environment.events.cpu_warning.fire(environment=environment, cpu_usage=99.0)
