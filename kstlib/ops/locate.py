"""Old name of :mod:`kstlib.ops.discovery` (kept so existing imports work).

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).
"""

from kstlib.ops import discovery
from kstlib.ops.discovery import *  # noqa: F403

__all__ = list(discovery.__all__)
