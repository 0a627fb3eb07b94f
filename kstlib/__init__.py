"""kstlib: tools for running and supervising long-lived processes.

The session-management subsystem lives in :mod:`kstlib.ops`. Every error
kstlib raises is a :class:`KstlibError` (exported here, as upstream does).

Example:
    >>> from kstlib import KstlibError
    >>> from kstlib.ops import OpsError
    >>> issubclass(OpsError, KstlibError)
    True
"""

import logging

from kstlib.exceptions import KstlibError

# A library logs, the application decides where records go (as requests does):
# without a handler of its own, a record of kstlib is not printed by logging's last resort.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__version__ = "0.1.0"

__all__ = ["KstlibError", "__version__"]
