"""How the fake speaks: NOWPayments' error shape, exact JSON numbers written as
NOWPayments writes them (:mod:`.signing`, the fake's own writer)."""

from __future__ import annotations

from decimal import Decimal

from isolation_harness.reference_app.fakes.control import (
    Dialect,
)
from isolation_harness.reference_app.fakes.payments.signing import write

#: NOWPayments' dialect: ``{"status": false, "statusCode", "code", "message"}`` errors
DIALECT = Dialect(
    invalid_code="INVALID_REQUEST_PARAMS",
    fault_code="INJECTED_FAULT",
    error_body=lambda error: {
        "status": False,
        "statusCode": error.status,
        "code": error.code,
        "message": error.message,
    },
    dumps=write,
    parse_float=Decimal,
)
invalid = DIALECT.invalid
