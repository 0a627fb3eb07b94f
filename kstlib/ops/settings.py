"""Settings read from the environment (``KSTLIB_OPS_*``), each checked when read.

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

A bad value is a :class:`~kstlib.ops.exceptions.SessionConfigError` that names
the variable, never a bare ``ValueError`` from deep inside a call.

Example:
    >>> import os
    >>> os.environ["KSTLIB_OPS_MAX_LOG_BYTES"] = "abc"
    >>> max_log_bytes()
    Traceback (most recent call last):
    ...
    kstlib.ops.exceptions.SessionConfigError: KSTLIB_OPS_MAX_LOG_BYTES: 'abc' is not a whole number of bytes (at least 4096)
    >>> del os.environ["KSTLIB_OPS_MAX_LOG_BYTES"]
    >>> max_log_bytes()
    67108864
"""

from __future__ import annotations

import os

from kstlib.ops.exceptions import SessionConfigError

__all__ = ["MAX_LOG_BYTES_ENV", "env_int", "max_log_bytes"]

#: The environment variable that sets the size at which a tmux session log rotates.
MAX_LOG_BYTES_ENV = "KSTLIB_OPS_MAX_LOG_BYTES"
_DEFAULT_MAX_LOG_BYTES = 64 * 1024 * 1024


def env_int(variable: str, default: int, *, minimum: int, unit: str) -> int:
    """The whole number in environment variable ``variable`` (``default`` when unset).

    Raises:
        SessionConfigError: the value is not a whole number of at least ``minimum``;
            ``field`` is the variable's name.

    Example:
        >>> env_int("KSTLIB_OPS_NO_SUCH_SETTING", 5, minimum=1, unit="seconds")
        5
    """
    raw = os.environ.get(variable)
    if raw is None or raw.strip() == "":
        return default
    shown = raw if len(raw) <= 40 else raw[:40] + "..."
    try:
        value = int(raw.strip())
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise SessionConfigError(
            f"{variable}: {shown!r} is not a whole number of {unit} (at least {minimum})",
            variable,
        )
    return value


def max_log_bytes() -> int:
    """The size past which a tmux session log rotates (``KSTLIB_OPS_MAX_LOG_BYTES``, 64 MiB).

    Example:
        >>> max_log_bytes() >= 4096
        True
    """
    return env_int(MAX_LOG_BYTES_ENV, _DEFAULT_MAX_LOG_BYTES, minimum=4096, unit="bytes")
