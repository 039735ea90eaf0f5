"""The application's exception tree, in one place.

Every error the app answers on purpose is an :class:`AppError`: it carries a machine code,
an HTTP status and the service it comes from. One middleware turns it into

    {"error": {"code", "message", "service", "request_id"}}

    AppError
    ├── BadRequest (400)            malformed body, wrong type, bad amount, unknown currency
    ├── Unauthorized (401)          no or bad bearer token
    ├── Forbidden (403)             authenticated, but not allowed (e.g. not the admin)
    ├── NotFound (404)              absent, or someone else's
    ├── Conflict (409)              the state does not allow it (invalid transition, …)
    │   └── InsufficientFunds (409) a debit or lock would overdraw
    ├── Gone (410)                  expired (a swap quote, …)
    ├── PayloadTooLarge (413)
    ├── UpstreamRefused (502)       the provider refused the request (4xx): not an outage
    ├── DependencyUnavailable (503) the service's database or provider failed or timed out
    │   └── ServiceBroken (503)     the service was broken on purpose through the fault API
    └── ServiceFailed (503)         the service's own work failed (a decimal operation)
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """An error with a code, an HTTP status and the service that raised it."""

    status = 500
    code = "internal_error"

    def __init__(
        self, message: str, *, service: str = "app", code: str | None = None, **details: Any
    ) -> None:
        super().__init__(message)
        self.message = message
        self.service = service
        if code is not None:
            self.code = code
        self.details = details


class BadRequest(AppError):
    status = 400
    code = "bad_request"


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class InsufficientFunds(Conflict):
    code = "insufficient_funds"


class Gone(AppError):
    status = 410
    code = "gone"


class PayloadTooLarge(AppError):
    status = 413
    code = "payload_too_large"


class UpstreamRefused(AppError):
    status = 502
    code = "upstream_refused"


class DependencyUnavailable(AppError):
    status = 503
    code = "dependency_unavailable"


class ServiceBroken(DependencyUnavailable):
    code = "service_broken"


class ServiceFailed(AppError):
    """The service's own work failed where no input could have made it (the inputs were
    checked at the edge): answered as that service's 503, like its database's failures."""

    status = 503
    code = "service_failed"
