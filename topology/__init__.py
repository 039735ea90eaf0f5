"""The deployment contract every part agrees on: services, links, roles, the design variant,
environment variables, the state file, durations and ports.

It sits at the bottom: the app (its settings side), the harness, the load and the tests import
it, and it imports none of them.
"""

from isolation_harness.topology.durations import DurationError, parse_duration
from isolation_harness.topology.environment import VARIABLES, Variable, variable_named
from isolation_harness.topology.links import (
    LINK_NAMES,
    LINKS,
    SHARED_LINK,
    Link,
    Target,
    database_link,
    link_named,
)
from isolation_harness.topology.ports import LOOPBACK, free_port
from isolation_harness.topology.services import (
    APP_DATABASE,
    DEFAULT_VARIANT,
    LEGACY_POOL,
    LEGACY_ROLE,
    SERVICES,
    VARIANTS,
    Variant,
    role_of,
)
from isolation_harness.topology.state_file import (
    DEFAULT_STATE_DIR,
    STATE_FILE,
    state_dir,
    state_path,
)

__all__ = [
    "APP_DATABASE",
    "DEFAULT_STATE_DIR",
    "DEFAULT_VARIANT",
    "LEGACY_POOL",
    "LEGACY_ROLE",
    "LINKS",
    "LINK_NAMES",
    "LOOPBACK",
    "SERVICES",
    "SHARED_LINK",
    "STATE_FILE",
    "VARIABLES",
    "VARIANTS",
    "DurationError",
    "Link",
    "Target",
    "Variable",
    "Variant",
    "database_link",
    "free_port",
    "link_named",
    "parse_duration",
    "role_of",
    "state_dir",
    "state_path",
    "variable_named",
]
