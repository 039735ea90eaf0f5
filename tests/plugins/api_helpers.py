"""Helpers for tests that read what the app exposes."""

from __future__ import annotations

import re


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format, summed over unnamed labels."""
    total = None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.match(r"([a-zA-Z_:][\w:]*)(\{.*\})? (\S+)", line)
        if match is None or match[1] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match[2] or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total = (total or 0.0) + float(match[3])
    if total is None:
        raise AssertionError(f"no sample {name}{labels}")
    return total
