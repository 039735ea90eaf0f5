"""Configuration of the local stack, read from environment variables and validated.

Every variable of the project is listed in :data:`topology.environment.VARIABLES`; the
harness reads its own, leaves the load's alone, and stops at any other ``HARNESS_*``
variable (a typo) with a suggestion.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from isolation_harness.chaos.errors import ConfigError
from isolation_harness.topology.environment import PREFIX, VARIABLES
from isolation_harness.topology.services import DEFAULT_VARIANT, Variant
from isolation_harness.topology.state_file import DEFAULT_STATE_DIR

PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: the variables the stack's settings are read from, by name
_OWN = {v.name: v for v in VARIABLES if v.reader == "harness"}
_FIELD_TO_VARIABLE = {v.field: v for v in _OWN.values()}
_KNOWN = frozenset(v.name for v in VARIABLES)


class Settings(BaseModel):
    """Validated stack settings. Build with :meth:`from_env`; tests pass values directly."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    state_dir: Path = Path(DEFAULT_STATE_DIR)
    tools_dir: Path = PROJECT_ROOT / ".tools"
    pg_dsn: str | None = None
    pg_bin: Path | None = None
    pg_port: int | None = Field(default=None, ge=1, le=65535)
    pg_fsync: Literal["on", "off"] = "off"
    pg_max_connections: int = Field(default=500, ge=20, le=10000)
    toxiproxy_port: int | None = Field(default=None, ge=1, le=65535)
    app_port: int | None = Field(default=None, ge=1, le=65535)
    app_workers: int = Field(default=2, ge=1, le=64)
    app_variant: Variant = DEFAULT_VARIANT
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
        unknown = sorted(k for k in environ if k.startswith(PREFIX) and k not in _KNOWN)
        if unknown:
            name = unknown[0]
            close = difflib.get_close_matches(name, _KNOWN, n=1)
            hint = f"did you mean {close[0]}?" if close else "known: " + ", ".join(sorted(_KNOWN))
            raise ConfigError(f"unknown variable {name}", f"{hint} (unset it otherwise)")
        values = {_OWN[k].field: v for k, v in environ.items() if k in _OWN and v != ""}
        return cls.validated(**values)

    @classmethod
    def validated(cls, **values: object) -> Settings:
        """Build settings, turning a validation error into a :class:`ConfigError`."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0]) if error["loc"] else "?"
            variable = _FIELD_TO_VARIABLE.get(field)
            name = variable.name if variable is not None else field
            raise ConfigError(
                f"{name}={values.get(field)!r}: {error['msg']}",
                f"fix or unset {name}: {variable.help}" if variable is not None else "",
            ) from None

    def with_overrides(self, **values: object) -> Settings:
        """A copy with the given fields replaced (``None`` values are ignored), re-validated."""
        merged = self.model_dump()
        merged.update({k: v for k, v in values.items() if v is not None})
        return self.validated(**merged)
