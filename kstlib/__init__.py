"""kstlib: tools for running and supervising long-lived processes.

The session-management subsystem lives in :mod:`kstlib.ops`.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
