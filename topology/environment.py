"""Every environment variable the project reads, who reads it, and what it is for.

The harness refuses any other ``HARNESS_*`` variable (a typo); the load's variables are
known to it and never refused. The README's table is written from :data:`VARIABLES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: the prefix of the project's own variables (besides Toxiproxy's two)
PREFIX = "HARNESS_"

# -- read by the harness (``chaos``): the stack's settings -----------------------------------
ENV_STATE_DIR = "HARNESS_STATE_DIR"
ENV_TOOLS_DIR = "HARNESS_TOOLS_DIR"
ENV_PG_DSN = "HARNESS_PG_DSN"
ENV_PG_BIN = "HARNESS_PG_BIN"
ENV_PG_PORT = "HARNESS_PG_PORT"
ENV_PG_FSYNC = "HARNESS_PG_FSYNC"
ENV_PG_MAX_CONNECTIONS = "HARNESS_PG_MAX_CONNECTIONS"
ENV_TOXIPROXY_PORT = "HARNESS_TOXIPROXY_PORT"
ENV_APP_PORT = "HARNESS_APP_PORT"
ENV_APP_WORKERS = "HARNESS_APP_WORKERS"
ENV_APP_VARIANT = "HARNESS_APP_VARIANT"
ENV_APP_SERVICE_TIMEOUT = "HARNESS_APP_SERVICE_TIMEOUT"
ENV_TOXIPROXY_URL = "TOXIPROXY_URL"
ENV_TOXIPROXY_SERVER = "TOXIPROXY_SERVER"

# -- read by the load's Locust processes (set by the harness for its own runs, or by hand) --
ENV_ADMIN_TOKEN = "HARNESS_ADMIN_TOKEN"  # noqa: S105 - a variable name, not a secret
ENV_MIX = "HARNESS_MIX"
ENV_SAMPLES_DIR = "HARNESS_SAMPLES_DIR"
#: every user's pause between two tasks, ``"min,max"`` seconds (default: each kind's own)
ENV_THINK_TIME = "HARNESS_THINK_TIME"
#: the run's seed, from which every user's random decisions derive (``load/seeding.py``);
#: unset: each Locust process draws one of its own
ENV_SEED = "HARNESS_SEED"
#: base URL of the payment-provider fake, whose control API depositors pay through (the
#: payer's side of a deposit); unset: depositors create deposits and never pay them
ENV_PAYMENTS_URL = "HARNESS_PAYMENTS_URL"

Reader = Literal["harness", "load"]


@dataclass(frozen=True)
class Variable:
    """One environment variable: its name, the part that reads it, and what it sets."""

    name: str
    reader: Reader
    help: str

    @property
    def field(self) -> str:
        """The settings field it sets (``HARNESS_PG_DSN`` -> ``pg_dsn``)."""
        return self.name.removeprefix(PREFIX).lower()


VARIABLES: tuple[Variable, ...] = (
    Variable(
        ENV_STATE_DIR,
        "harness",
        "folder for the stack's state, logs and cluster (default .harness)",
    ),
    Variable(
        ENV_TOOLS_DIR,
        "harness",
        "folder where the Toxiproxy server is built and a fresh initdb output is kept "
        "to start clusters faster (default .tools)",
    ),
    Variable(
        ENV_PG_DSN,
        "harness",
        "use this existing PostgreSQL server instead of starting one (the harness "
        "creates its own databases there)",
    ),
    Variable(
        ENV_PG_BIN,
        "harness",
        "folder with initdb and pg_ctl (default: newest /usr/lib/postgresql/*/bin)",
    ),
    Variable(
        ENV_PG_PORT,
        "harness",
        "port of the local PostgreSQL cluster (default: a free one)",
    ),
    Variable(
        ENV_PG_FSYNC,
        "harness",
        "on|off: fsync of the throw-away cluster (default off)",
    ),
    Variable(
        ENV_PG_MAX_CONNECTIONS,
        "harness",
        "max_connections of the cluster (default 500: every service's pool fits)",
    ),
    Variable(
        ENV_TOXIPROXY_PORT,
        "harness",
        "API port of the Toxiproxy server the harness starts",
    ),
    Variable(
        ENV_APP_PORT,
        "harness",
        "port of the reference app (default: a free one)",
    ),
    Variable(
        ENV_APP_WORKERS,
        "harness",
        "worker processes of the reference app (default 2)",
    ),
    Variable(
        ENV_APP_VARIANT,
        "harness",
        "isolated|legacy: the app's design (default isolated)",
    ),
    Variable(
        ENV_APP_SERVICE_TIMEOUT,
        "harness",
        "seconds a service call may take before the app answers its own 503 (default 4;"
        " must stay below the load generator's 5 s client timeout, which every run "
        "checks)",
    ),
    Variable(
        ENV_TOXIPROXY_URL,
        "harness",
        "use this running Toxiproxy server; the harness never starts or stops it",
    ),
    Variable(
        ENV_TOXIPROXY_SERVER,
        "harness",
        "path of a toxiproxy-server binary to start",
    ),
    Variable(
        ENV_ADMIN_TOKEN,
        "load",
        "the app's admin token, for Locust started by hand against an app other than "
        "the running stack's",
    ),
    Variable(
        ENV_MIX,
        "load",
        "the kinds of users and their weights, e.g. deposits=3,p2p=1 (default: the "
        "locustfile's DEFAULT_MIX)",
    ),
    Variable(
        ENV_SEED,
        "load",
        "the seed every user's random decisions derive from (default: one per Locust process)",
    ),
    Variable(
        ENV_THINK_TIME,
        "load",
        "every user's pause between two tasks, min,max seconds (default: each kind's own)",
    ),
    Variable(
        ENV_PAYMENTS_URL,
        "load",
        "the payment-provider fake depositors pay through (default: the running stack's)",
    ),
    Variable(
        ENV_SAMPLES_DIR,
        "load",
        "folder where each Locust process keeps every sample it measured",
    ),
)


def variable_named(name: str) -> Variable | None:
    """The variable called ``name``, or None if the project reads no such variable."""
    return next((v for v in VARIABLES if v.name == name), None)


def load_variables() -> frozenset[str]:
    """The names of the variables the load's Locust processes read."""
    return frozenset(v.name for v in VARIABLES if v.reader == "load")
