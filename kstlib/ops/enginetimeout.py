"""The bound of one container engine API call, in a module that imports nothing.

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

:mod:`kstlib.ops.engines.adapter` re-exports :data:`DEFAULT_TIMEOUT`; it lives
here so that what only needs the number (:mod:`kstlib.ops.locations`, the
CLI) does not import the engines package (its dataclasses, ``socket``, the
models and validators).

Example:
    >>> DEFAULT_TIMEOUT
    30.0
"""

from __future__ import annotations

__all__ = ["DEFAULT_TIMEOUT"]

#: Seconds any single engine API call may take (a graceful stop adds its own timeout).
DEFAULT_TIMEOUT = 30.0
