"""The kinds of simulated traffic, by the name used in ``--mix`` (no Locust import here)."""

from __future__ import annotations

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

#: environment variables the locustfile reads (set by load/runner.py, or by hand)
ENV_ADMIN_TOKEN = "HARNESS_ADMIN_TOKEN"  # noqa: S105 - a variable name, not a secret
ENV_MIX = "HARNESS_MIX"
ENV_SAMPLES_DIR = "HARNESS_SAMPLES_DIR"
#: the run's seed, recorded with the run
ENV_SEED = "HARNESS_SEED"
#: base URL of the payment-provider fake, whose control API depositors pay through (the
#: payer's side of a deposit); unset: depositors create deposits and never pay them
ENV_PAYMENTS_URL = "HARNESS_PAYMENTS_URL"


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
