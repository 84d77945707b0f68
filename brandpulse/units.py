"""Value types shared by every configuration section."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> timedelta:
    """'90s', '5m', '1h', '7d' or a number of seconds -> timedelta.

    People write durations in config files; ISO 8601 ('PT5M') is also accepted so
    values dumped by pydantic read back.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '30s', '5m', '1h' or '7d'")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
        if value.strip().upper().startswith("P"):
            from pydantic import TypeAdapter

            return TypeAdapter(timedelta).validate_python(value.strip())
    raise ValueError("expected a duration such as '30s', '5m', '1h' or '7d'")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def min_duration(minimum: timedelta) -> AfterValidator:
    """A validator for `Annotated[Duration, min_duration(...)]`: shorter is an error
    that names the minimum (a zero timeout or a negative interval is never meant)."""
    seconds = minimum.total_seconds()
    shown = "0s" if seconds == 0 else (f"{seconds / 3600:g}h" if seconds >= 3600 else f"{seconds:g}s")

    def check(value: timedelta) -> timedelta:
        if value < minimum:
            raise ValueError(f"must be at least {shown}")
        return value

    return AfterValidator(check)
