"""Windows of a faulted phase, as thresholds name them: ``outage``, ``outage@faulted``,
``outage@restored``, ``outage@restored+2s`` (the requests each holds are chosen by
:mod:`chaos.judge.windows`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from isolation_harness.topology.durations import parse_duration

Anchor = Literal["faulted", "restored"]
ANCHORS: tuple[Anchor, ...] = ("faulted", "restored")
_WINDOW = re.compile(r"(?P<phase>[A-Za-z_][A-Za-z0-9_]*)(?:@(?P<anchor>\w+)(?:\+(?P<offset>.+))?)?")


@dataclass(frozen=True)
class Window:
    """A phase, or part of a faulted phase (see the module docstring)."""

    phase: str
    anchor: Anchor | None = None
    #: seconds after the anchor (``restored`` only)
    offset: float = 0.0
    text: str = ""

    def __str__(self) -> str:
        return self.text or self.phase

    @classmethod
    def parse(cls, text: str) -> Window:
        """``outage``, ``outage@faulted``, ``outage@restored``, ``outage@restored+2s``."""
        match = _WINDOW.fullmatch(text.strip())
        if match is None:
            raise ValueError(
                f"{text!r} is neither a phase nor a window of one "
                "(e.g. outage, outage@faulted, outage@restored+2s)"
            )
        anchor_text, offset_text = match["anchor"], match["offset"]
        if anchor_text is None:
            return cls(match["phase"], text=text)
        anchor = next((a for a in ANCHORS if a == anchor_text), None)
        if anchor is None:
            raise ValueError(f"unknown window @{anchor_text} (known: @faulted, @restored)")
        offset = 0.0
        if offset_text is not None:
            if anchor != "restored":
                raise ValueError("only @restored takes an offset, e.g. outage@restored+2s")
            offset = parse_duration(offset_text)  # a DurationError is a ValueError
        return cls(match["phase"], anchor, offset, text)
