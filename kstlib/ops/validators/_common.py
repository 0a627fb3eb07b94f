"""What every check shares: the error it raises and the bounded echo of a value.

Example:
    >>> str(config_error("ports", "'x' is not a port"))
    "ports: 'x' is not a port"
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable, Sequence

from kstlib.ops.exceptions import SessionConfigError

__all__ = [
    "MAX_SHOWN",
    "config_error",
    "matching",
    "require_str",
    "sequence_of_str",
    "short",
    "shown",
    "shown_key",
    "strings_of",
]


def config_error(field: str, problem: str) -> SessionConfigError:
    """Build the error for a bad value of ``field``.

    Example:
        >>> str(config_error("ports", "'x' is not a port"))
        "ports: 'x' is not a port"
    """
    return SessionConfigError(f"{field}: {problem}", field=field, problem=problem)


#: The longest echo of a user value in any message (the value itself may be megabytes).
MAX_SHOWN = 60
_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxstring = MAX_SHOWN
_REPR.maxother = MAX_SHOWN
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4


def shown(value: object) -> str:
    """A bounded ``repr`` of a user value, for messages.

    Never more than :data:`MAX_SHOWN` characters, and cheap whatever the size
    or the nesting of ``value`` (a YAML alias bomb expands to billions of
    items: its full ``repr`` would exhaust memory).

    Example:
        >>> shown("x" * 1000)[:8], len(shown("x" * 1000)) <= MAX_SHOWN
        ("'xxxxxxx", True)
        >>> shown([[1, 2, 3, 4, 5, 6]])
        '[[1, 2, 3, 4, ...]]'
    """
    try:
        text = _REPR.repr(value)
    except Exception:  # a hostile __repr__: say what it is, not what it claims
        text = f"<{type(value).__name__}>"
    return text if len(text) <= MAX_SHOWN else f"{text[: MAX_SHOWN - 3]}..."


def shown_key(key: object) -> str:
    """A mapping key as written in a key path (``ops.sessions.KEY``), bounded like :func:`shown`.

    Example:
        >>> shown_key("bot"), shown_key("k" * 100)[-5:]
        ('bot', 'kk...')
    """
    text = key if isinstance(key, str) else shown(key)
    return text if len(text) <= MAX_SHOWN else f"{text[: MAX_SHOWN - 3]}..."


short = shown


def require_str(field: str, value: object, *, secret: bool = False) -> str:
    """``value`` as a checked string; ``secret``: messages never show the value."""
    if not isinstance(value, str):
        raise config_error(field, f"expected a string, got {type(value).__name__}")
    what = "value" if secret else short(value)
    if "\x00" in value:
        raise config_error(field, f"{what} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (e.g. from os.fsdecode of bad bytes) cannot reach
        # any engine or command line; say so instead of failing on .encode().
        raise config_error(field, f"{what} is not valid Unicode text") from None
    return value


def sequence_of_str(field: str, values: object) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise config_error(field, f"expected a list of strings, got {type(values).__name__}")
    return tuple(require_str(field, v) for v in values)


def matching(field: str, value: object, pattern: re.Pattern[str], must: str) -> str:
    """``value`` as a checked string that ``pattern`` matches whole; else ``must`` says why.

    Example:
        >>> matching("memory", "1x", re.compile("[0-9]+"), "must be a number")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: memory: '1x' must be a number
    """
    checked = require_str(field, value)
    if not pattern.fullmatch(checked):
        raise config_error(field, f"{short(checked)} {must}")
    return checked


def strings_of(
    field: str, value: object, what: str, fits: Callable[[str], bool], rule: str
) -> tuple[str, ...]:
    """The items of a list or tuple (a single string is one item), each a string that ``fits``.

    An item that is not such a string is refused as ``"{item} {rule}"``.

    Example:
        >>> strings_of("refs", "a", "names", str.isalpha, "is not a name")
        ('a',)
        >>> strings_of("refs", 3, "names", str.isalpha, "is not a name")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: refs: 3 must be a list of names
        >>> strings_of("refs", ["a", "1"], "names", str.isalpha, "is not a name")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: refs: '1' is not a name
    """
    items = (value,) if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise config_error(field, f"{shown(value)} must be a list of {what}")
    for item in items:
        if not isinstance(item, str) or not fits(item):
            raise config_error(field, f"{shown(item)} {rule}")
    return tuple(items)
