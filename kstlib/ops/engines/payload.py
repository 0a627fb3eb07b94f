"""Reading engine JSON without trusting its shape: each field checked for its type.

An engine (or something posing as one) may answer with a list where an
object belongs, a string for a number, or an integer too large for a time.
The payload readers take their fields through these functions, which raise
:class:`MalformedAnswer` (a ``ValueError``) naming the field; the adapters'
translation tables turn it into the operation's error, so no
``AttributeError``/``TypeError``/``OverflowError`` escapes as a kstlib bug.

Example:
    >>> obj({"State": {}}, "inspect")["State"]
    {}
    >>> obj(["a"], "inspect")
    Traceback (most recent call last):
    ...
    kstlib.ops.engines.payload.MalformedAnswer: the engine's answer is malformed: inspect is a list, expected an object
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "MalformedAnswer",
    "integer",
    "labels",
    "obj",
    "seq",
    "text",
    "top_rows",
]

#: Integers the engines send (pids, exit codes, counts) fit in 64 bits.
_INT_LIMIT = 1 << 63


class MalformedAnswer(ValueError):
    """An engine answer whose shape is not the API's.

    Example:
        >>> str(MalformedAnswer("Pid", "a string"))
        "the engine's answer is malformed: Pid is a string, expected an integer"
    """

    def __init__(self, what: str, got: str, expected: str = "an integer") -> None:
        super().__init__(f"the engine's answer is malformed: {what} is {got}, expected {expected}")


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if isinstance(value, int) and not isinstance(value, bool):
        return "an integer out of range" if abs(value) >= _INT_LIMIT else "an integer"
    return names.get(type(value), f"a {type(value).__name__}")


def obj(value: object, what: str) -> Mapping[str, Any]:
    """An object (``null``: empty).

    Example:
        >>> obj(None, "State")
        {}
    """
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    raise MalformedAnswer(what, _kind(value), "an object")


def seq(value: object, what: str) -> list[Any]:
    """A list (``null``: empty).

    Example:
        >>> seq(None, "Names"), seq(["/bot"], "Names")
        ([], ['/bot'])
    """
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise MalformedAnswer(what, _kind(value), "a list")


def text(value: object, what: str) -> str:
    """A string (``null``: empty; a number is written out).

    Example:
        >>> text(None, "Id"), text(3, "Id")
        ('', '3')
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise MalformedAnswer(what, _kind(value), "a string")


def integer(value: object, what: str) -> int | None:
    """A 64-bit integer (``null``: ``None``).

    Example:
        >>> integer(3, "ExitCode"), integer(None, "ExitCode")
        (3, None)
        >>> integer("3", "ExitCode")
        Traceback (most recent call last):
        ...
        kstlib.ops.engines.payload.MalformedAnswer: the engine's answer is malformed: ExitCode is a string, expected an integer
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < _INT_LIMIT:
        return value
    raise MalformedAnswer(what, _kind(value))


def labels(value: object, what: str) -> dict[str, str]:
    """Labels: an object of strings (``null``: none).

    Example:
        >>> labels({"a": "1"}, "Labels"), labels(None, "Labels")
        ({'a': '1'}, {})
    """
    found = obj(value, what)
    for key, item in found.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise MalformedAnswer(f"{what}[{key!r}]", _kind(item), "a string")
    return dict(found)


def top_rows(answer: object) -> list[tuple[int, int, str]]:
    """The ``(pid, ppid, command line)`` of each process of a ``top`` answer.

    Example:
        >>> top_rows({"Titles": ["PID", "PPID", "COMMAND"], "Processes": [["1", "0", "sh"]]})
        [(1, 0, 'sh')]
    """
    found = obj(answer, "the top answer")
    titles = [text(t, "Titles[]").upper() for t in seq(found.get("Titles"), "Titles")]
    try:
        pid, ppid = titles.index("PID"), titles.index("PPID")
        cmd = next(i for i, t in enumerate(titles) if t in ("CMD", "COMMAND", "ARGS"))
    except (ValueError, StopIteration):
        raise MalformedAnswer("Titles", repr(titles)[:80], "PID, PPID and CMD") from None
    rows: list[tuple[int, int, str]] = []
    for row in seq(found.get("Processes"), "Processes"):
        cells = seq(row, "Processes[]")
        if len(cells) == len(titles):
            rows.append((_pid(cells[pid]), _pid(cells[ppid]), text(cells[cmd], "CMD")))
    return rows


def _pid(value: object) -> int:
    """A process id of a ``top`` row (the engines send them as strings)."""
    digits = text(value, "PID")
    if not digits.isdigit() or len(digits) > 18:
        raise MalformedAnswer("PID", repr(digits)[:40], "a process id")
    return int(digits)
