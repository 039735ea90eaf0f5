"""Configuration of the local stack, read from environment variables and validated.

Every variable the harness reads is listed in :data:`VARIABLES`; any other ``HARNESS_*``
variable is a typo and stops the harness with a suggestion.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chaos.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: variable -> (field, help). The README's table is written from this.
VARIABLES: dict[str, tuple[str, str]] = {
    "HARNESS_STATE_DIR": (
        "state_dir",
        "folder for the stack's state, logs and cluster (default .harness)",
    ),
    "HARNESS_TOOLS_DIR": (
        "tools_dir",
        "folder where the Toxiproxy server is built and initdb's output kept (default .tools)",
    ),
    "HARNESS_PG_DSN": ("pg_dsn", "use this existing PostgreSQL server instead of starting one"),
    "HARNESS_PG_BIN": (
        "pg_bin",
        "folder with initdb and pg_ctl (default: newest /usr/lib/postgresql/*/bin)",
    ),
    "HARNESS_PG_PORT": ("pg_port", "port of the local PostgreSQL cluster (default: a free one)"),
    "HARNESS_PG_FSYNC": ("pg_fsync", "on|off: fsync of the throw-away cluster (default off)"),
    "HARNESS_PG_MAX_CONNECTIONS": (
        "pg_max_connections",
        "max_connections of the cluster (default 500)",
    ),
    "HARNESS_TOXIPROXY_PORT": (
        "toxiproxy_port",
        "API port of the Toxiproxy server the harness starts",
    ),
    "HARNESS_APP_PORT": ("app_port", "port of the reference app (default: a free one)"),
    "HARNESS_APP_WORKERS": ("app_workers", "worker processes of the reference app (default 2)"),
    "HARNESS_APP_VARIANT": ("app_variant", "isolated|legacy: the app's design (default isolated)"),
    "HARNESS_APP_SERVICE_TIMEOUT": (
        "app_service_timeout",
        "seconds a service call may take before the app answers its 503 (default 4; must stay "
        "below the load generator's 5 s client timeout)",
    ),
    "TOXIPROXY_URL": ("toxiproxy_url", "use this running Toxiproxy server; never start or stop it"),
    "TOXIPROXY_SERVER": ("toxiproxy_server", "path of a toxiproxy-server binary to start"),
}
_PREFIX = "HARNESS_"
_FIELD_TO_VARIABLE = {field: variable for variable, (field, _) in VARIABLES.items()}


class Settings(BaseModel):
    """Validated stack settings. Build with :meth:`from_env`; tests pass values directly."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state_dir: Path = Path(".harness")
    tools_dir: Path = PROJECT_ROOT / ".tools"
    pg_dsn: str | None = None
    pg_bin: Path | None = None
    pg_port: int | None = Field(default=None, ge=1, le=65535)
    pg_fsync: Literal["on", "off"] = "off"
    pg_max_connections: int = Field(default=500, ge=20, le=10000)
    toxiproxy_port: int | None = Field(default=None, ge=1, le=65535)
    app_port: int | None = Field(default=None, ge=1, le=65535)
    app_workers: int = Field(default=2, ge=1, le=64)
    app_variant: Literal["isolated", "legacy"] = "isolated"
    app_service_timeout: float = Field(default=4.0, gt=0, le=600)
    toxiproxy_url: str | None = None
    toxiproxy_server: Path | None = None

    @property
    def pg_templates(self) -> Path:
        """Where a fresh ``initdb`` output is kept, copied into each new local cluster."""
        return self.tools_dir / "pg-templates"

    @field_validator("toxiproxy_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http URL such as http://127.0.0.1:8474")
        try:
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError as exc:
            raise ValueError(f"has a malformed port: {exc}") from None
        return value.rstrip("/")

    @field_validator("pg_dsn")
    @classmethod
    def _dsn(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("is empty")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read the harness's variables from ``environ``; unknown or invalid ones raise."""
        unknown = sorted(k for k in environ if k.startswith(_PREFIX) and k not in VARIABLES)
        if unknown:
            name = unknown[0]
            close = difflib.get_close_matches(name, VARIABLES, n=1)
            hint = f"did you mean {close[0]}?" if close else "known: " + ", ".join(VARIABLES)
            raise ConfigError(f"unknown variable {name}", f"{hint} (unset it otherwise)")
        values = {VARIABLES[k][0]: v for k, v in environ.items() if k in VARIABLES and v != ""}
        return cls.validated(**values)

    @classmethod
    def validated(cls, **values: object) -> Settings:
        """Build settings, turning a validation error into a :class:`ConfigError`."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0]) if error["loc"] else "?"
            name = _FIELD_TO_VARIABLE.get(field, field)
            raise ConfigError(
                f"{name}={values.get(field)!r}: {error['msg']}",
                f"fix or unset {name}: {VARIABLES[name][1]}" if name in VARIABLES else "",
            ) from None

    def with_overrides(self, **values: object) -> Settings:
        """A copy with the given fields replaced (``None`` values are ignored), re-validated."""
        merged = self.model_dump()
        merged.update({k: v for k, v in values.items() if v is not None})
        return self.validated(**merged)
