"""The value types of the CLI's options (argparse ``type=``): seconds, times, line counts.

Each refuses a bad value with one line naming it (bounded, as the validators
show values), which the parser turns into a usage error.
"""

from __future__ import annotations

import argparse

from kstlib.ops.validators import shown

__all__ = ["line_count", "since_time", "timeout_seconds"]


def timeout_seconds(text: str) -> float:
    """``--timeout``: seconds, from 0 to one day.

    Example:
        >>> timeout_seconds("2.5")
        2.5
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a number of seconds") from None
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"{shown(text)} must be between 0 and 86400 seconds")
    return value


def since_time(text: str) -> float:
    """``--since``: an ISO 8601 time, a Unix time, or an age (``90s``, ``10m``, ``2h``, ``1d``).

    Example:
        >>> since_time("1970-01-01T00:01:00Z")
        60.0
    """
    import re
    import time
    from datetime import datetime, timezone

    age = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([smhd])", text)
    if age:
        factor = {"s": 1, "m": 60, "h": 3600, "d": 86400}[age.group(2)]
        return time.time() - float(age.group(1)) * factor
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{shown(text)} is not a time (ISO 8601, Unix time, or an age like 10m)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def line_count(text: str) -> int | None:
    """``--lines``: a number of lines, or ``all`` (``None``).

    Example:
        >>> line_count("all"), line_count("20")
        (None, 20)
    """
    if text == "all":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{shown(text)} is not a number of lines (or 'all')")
    return int(text)
