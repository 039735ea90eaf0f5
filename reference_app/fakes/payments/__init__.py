"""A NOWPayments-compatible payment provider, faked as its own aiohttp app: its book of
payments (:mod:`.book`), the IPNs it sends (:mod:`.ipn`), how it reads requests
(:mod:`.parsing`) and speaks (:mod:`.dialect`), its routes (:mod:`.app`) and its command
line (``python -m isolation_harness.reference_app.fakes.payments``). The protocol it
speaks, and how it is driven, is in ``docs/fakes.md``.
"""

from isolation_harness.reference_app.fakes.payments.app import (
    IPN_SENDER,
    PAYMENT_BOOK,
    create_payments_app,
)
from isolation_harness.reference_app.fakes.payments.book import (
    CURRENCIES,
    DEFAULT_FIRST_PAYMENT_ID,
    HAPPY_PATH,
    PaymentBook,
    PaymentsFakeConfig,
    PaymentStatus,
)

__all__ = [
    "CURRENCIES",
    "DEFAULT_FIRST_PAYMENT_ID",
    "HAPPY_PATH",
    "IPN_SENDER",
    "PAYMENT_BOOK",
    "PaymentBook",
    "PaymentStatus",
    "PaymentsFakeConfig",
    "create_payments_app",
]
