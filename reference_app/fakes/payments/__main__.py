"""The payment fake's command line:

python -m isolation_harness.reference_app.fakes.payments --port N --api-key K --ipn-secret S
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from aiohttp import web

from isolation_harness.reference_app.fakes.control import serve
from isolation_harness.reference_app.fakes.payments.app import create_payments_app
from isolation_harness.reference_app.fakes.payments.book import (
    DEFAULT_FIRST_PAYMENT_ID,
    PaymentsFakeConfig,
)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-key", required=True, help="the x-api-key clients must send")
    parser.add_argument("--ipn-secret", required=True, help="the secret IPNs are signed with")
    parser.add_argument("--ipn-timeout", type=float, default=5.0, help="seconds per IPN")
    parser.add_argument("--first-payment-id", type=int, default=DEFAULT_FIRST_PAYMENT_ID)


def _app(args: argparse.Namespace) -> web.Application:
    config = PaymentsFakeConfig(
        api_key=args.api_key,
        ipn_secret=args.ipn_secret,
        ipn_timeout=args.ipn_timeout,
        first_payment_id=args.first_payment_id,
    )
    return create_payments_app(config)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake provider on its own."""
    serve(
        argv,
        prog="python -m isolation_harness.reference_app.fakes.payments",
        description="A NOWPayments-compatible payment provider fake.",
        port=8790,
        build=_app,
        options=_options,
    )


if __name__ == "__main__":
    main()
