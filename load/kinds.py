"""The kinds of simulated traffic, by the name used in ``--mix`` (no Locust import here)."""

from __future__ import annotations

import functools
import signal

#: kind -> Locust user class name in load/locustfile.py
KINDS: dict[str, str] = {
    "deposits": "DepositorUser",
    "wallet": "WalletUser",
    "p2p": "P2PTraderUser",
    "swap": "SwapperUser",
    "express": "ExpressBuyerUser",
    "admin": "AdminUser",
    "health": "LivenessUser",
}

#: the request names (request groups) each kind of user can make: ``<service>.<action>``.
#: Scenario files are checked against it (a threshold's glob must match one of the mix's),
#: and every user reports only these (tests/load checks it on real runs).
_SIGN_UP = ("users.create", "admin.credit")
REQUESTS: dict[str, tuple[str, ...]] = {
    "deposits": (*_SIGN_UP, "deposits.create", "deposits.get", "deposits.list", "provider.pay"),
    "wallet": (*_SIGN_UP, "wallet.balances", "wallet.transactions", "wallet.withdraw"),
    "p2p": (
        *_SIGN_UP, "p2p.offers", "p2p.offer_create", "p2p.trade_open", "p2p.trade_paid",
        "p2p.trade_release", "p2p.trade_cancel", "p2p.trade_dispute", "p2p.trades",
    ),
    "swap": (*_SIGN_UP, "swap.quote", "swap.get", "swap.execute"),
    "express": (*_SIGN_UP, "admin.liquidity", "express.quote", "express.order"),
    "admin": (*_SIGN_UP, "admin.resolve", "health.ready"),
    "health": ("health.live",),
}  # fmt: skip

#: the app service that answers a request group, by the group's first part, where it is
#: not the service itself: sign-up is the wallet's; health probes are the app's own; the
#: payer's calls go to the payment provider, not to the app
GROUP_SERVICE: dict[str, str | None] = {"users": "wallet", "health": None, "provider": None}


def kind_of(class_name: str) -> str:
    """The kind of the user class called ``class_name`` (``DepositorUser`` -> ``deposits``);
    a class of no kind is its own."""
    return next((kind for kind, name in KINDS.items() if name == class_name), class_name)


@functools.cache  # request names are few; the judge asks once per sample
def service_of(request: str) -> str | None:
    """The app service that answers ``request`` (``deposits.create`` -> ``deposits``)."""
    prefix = request.partition(".")[0]
    return GROUP_SERVICE.get(prefix, prefix)


def requests_of(mix: dict[str, int] | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Every request name the kinds of ``mix`` can make, once each, in a stable order."""
    return tuple(dict.fromkeys(name for kind in mix for name in REQUESTS[kind]))


#: seconds a simulated user waits for an answer (to connect, and then for the answer)
#: before it gives up: the app's own time limits must stay below it, so that a hang shows
#: as the app's structured 503 and not as a client timeout (the runner checks)
CLIENT_TIMEOUT = 5.0

#: the signal that ends a Locust run (local or master) now, as its run time running out
#: would: every user finishes its task in hand (``--stop-timeout``) and every sample is kept
#: (the locustfile installs it; ``LoadRun.finish`` sends it)
FINISH_SIGNAL = signal.SIGUSR1


def parse_mix(text: str) -> dict[str, int]:
    """``"deposits=6,p2p=2"`` -> ``{"deposits": 6, "p2p": 2}``; ValueError says what is wrong."""
    mix: dict[str, int] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        kind, sep, weight = part.partition("=")
        kind = kind.strip()
        if kind not in KINDS:
            raise ValueError(f"unknown user kind {kind!r} (known: {', '.join(KINDS)})")
        if kind in mix:
            raise ValueError(f"user kind {kind!r} given twice")
        try:
            value = int(weight) if sep else 1
        except ValueError:
            raise ValueError(f"weight of {kind!r} must be a whole number, not {weight!r}") from None
        if value < 1:
            raise ValueError(f"weight of {kind!r} must be at least 1")
        mix[kind] = value
    if not mix:
        raise ValueError("the mix names no user kind")
    return mix


def parse_think_time(text: str) -> tuple[float, float]:
    """``"0.05,0.3"`` (or one number) -> ``(0.05, 0.3)`` seconds; ValueError says what is wrong."""
    parts = [part.strip() for part in text.split(",")]
    if not 1 <= len(parts) <= 2:
        raise ValueError(f"think time {text!r}: write min,max seconds, e.g. 0,0.3")
    try:
        low, high = float(parts[0]), float(parts[-1])
    except ValueError:
        raise ValueError(f"think time {text!r}: not a number of seconds") from None
    if not 0 <= low <= high:
        raise ValueError(f"think time {text!r}: need 0 <= min <= max")
    return low, high
