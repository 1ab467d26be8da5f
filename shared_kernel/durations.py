"""Durations written the way operators write them: 250ms, 5s, 30s, 5m, 1h, 7d."""

from __future__ import annotations

import re

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ValueError for anything else."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 250ms, 5s, 30s, 5m, 1h or 7d")
    return int(match[1]) * _SECONDS[match[2]]
