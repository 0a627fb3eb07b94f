"""kstlib: tools for running and supervising long-lived processes.

The session-management subsystem lives in :mod:`kstlib.ops`. Every error
kstlib raises is a :class:`KstlibError` (exported here, as upstream does).

Example:
    >>> from kstlib import KstlibError
    >>> from kstlib.ops import OpsError
    >>> issubclass(OpsError, KstlibError)
    True
"""

from kstlib.exceptions import KstlibError

__version__ = "0.1.0"

__all__ = ["KstlibError", "__version__"]
