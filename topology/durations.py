"""Durations as people write them: ``30s``, ``2m``, ``1m30s``, ``500ms``, ``1h``."""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?")


class DurationError(ValueError):
    """A duration that is malformed or not positive; the message says which."""


def parse_duration(text: str) -> float:
    """``"30s"``, ``"2m"``, ``"1m30s"``, ``"1h"``, ``"500ms"`` or plain seconds -> seconds."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        match = _DURATION.fullmatch(text)
        if not text or match is None or not any(match.groups()):
            raise DurationError(
                f"malformed duration {text!r}: use e.g. 30s, 2m, 1m30s, 500ms"
            ) from None
        hours, minutes, seconds, millis = match.groups()
        value = (
            int(hours or 0) * 3600
            + int(minutes or 0) * 60
            + float(seconds or 0)
            + int(millis or 0) / 1000
        )
    if not math.isfinite(value):
        raise DurationError(f"duration {text!r} must be a finite number of seconds")
    if value <= 0:
        raise DurationError(f"duration {text!r} must be positive")
    return value
