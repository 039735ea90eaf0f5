"""IPNs: the notification of each change of a payment's state, and their delivery over the
fake's own HTTP client."""

from __future__ import annotations

import json

import aiohttp

from isolation_harness.reference_app.fakes.payments.book import Ipn, IpnOutcome
from isolation_harness.reference_app.fakes.payments.signing import SIGNATURE_HEADER


class IpnSender:
    """Delivers IPNs over the fake's own HTTP client session."""

    def __init__(self, session: aiohttp.ClientSession, timeout: float) -> None:
        self._session = session
        self._timeout = timeout

    async def deliver(self, ipn: Ipn, url: str) -> IpnOutcome:
        headers = {SIGNATURE_HEADER: ipn.signature, "Content-Type": "application/json"}
        try:
            async with self._session.post(
                url, data=ipn.body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                answer = await response.text() if not 200 <= status < 300 else ""
        except TimeoutError:
            return IpnOutcome(False, None, f"no answer within {self._timeout:g}s")
        except (aiohttp.ClientError, ValueError) as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return IpnOutcome(False, None, reason)
        if 200 <= status < 300:
            return IpnOutcome(True, status, None)
        return IpnOutcome(False, status, f"the app answered HTTP {status}{_named(answer)}")


def _named(answer: str) -> str:
    """`` (service: code)`` from an answer in the app's error shape, else nothing."""
    try:
        error = json.loads(answer).get("error")
        return f" ({error['service']}: {error['code']})"
    except (ValueError, AttributeError, TypeError, KeyError):
        return ""
