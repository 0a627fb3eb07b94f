"""Root of every exception raised by kstlib.

Example:
    >>> from kstlib.exceptions import KstlibError
    >>> from kstlib.ops.exceptions import OpsError
    >>> issubclass(OpsError, KstlibError)
    True
"""

from __future__ import annotations

__all__ = ["KstlibError"]


class KstlibError(Exception):
    """Base class of every error raised by kstlib.

    Catch it to handle any kstlib failure in one place.

    Example:
        >>> try:
        ...     raise KstlibError("something went wrong")
        ... except KstlibError as exc:
        ...     print(exc)
        something went wrong
    """
