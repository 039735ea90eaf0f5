"""Bearer tokens: signed user tokens (no database needed to check one) and the admin token.

Checking a token touches no service's database, so authentication keeps working whichever
service is down.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass

from aiohttp import web

from isolation_harness.reference_app.errors import Forbidden, Unauthorized

_PREFIX = "u1"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, or the admin."""

    user_id: uuid.UUID | None
    admin: bool = False


class Tokens:
    """Issues and checks tokens: ``u1.<user id>.<HMAC-SHA256 of it>``."""

    def __init__(self, secret: str, admin_token: str) -> None:
        self._secret = secret.encode()
        self._admin_token = admin_token

    def issue(self, user_id: uuid.UUID) -> str:
        return f"{_PREFIX}.{user_id}.{self._mac(str(user_id))}"

    def principal(self, request: web.Request) -> Principal:
        """The caller of ``request``; :class:`Unauthorized` without a valid token."""
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("missing bearer token (Authorization: Bearer <token>)")
        token = token.strip()
        if not token.isascii():  # no token of ours is; compare_digest refuses to compare it
            raise Unauthorized("invalid token")
        if hmac.compare_digest(token, self._admin_token):
            return Principal(None, admin=True)
        prefix, _, rest = token.partition(".")
        user, _, mac = rest.rpartition(".")
        if prefix != _PREFIX or not hmac.compare_digest(mac, self._mac(user)):
            raise Unauthorized("invalid token")
        try:
            return Principal(uuid.UUID(user))
        except ValueError:
            raise Unauthorized("invalid token") from None

    def user(self, request: web.Request) -> uuid.UUID:
        """The calling user's id; the admin token is not a user."""
        principal = self.principal(request)
        if principal.user_id is None:
            raise Forbidden("this endpoint needs a user token, not the admin token")
        return principal.user_id

    def admin(self, request: web.Request) -> None:
        """Pass only with the admin token."""
        if not self.principal(request).admin:
            raise Forbidden("admin token required")

    def _mac(self, value: str) -> str:
        return hmac.new(self._secret, value.encode(), hashlib.sha256).hexdigest()[:40]
