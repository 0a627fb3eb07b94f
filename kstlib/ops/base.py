"""Upstream kstlib's module for the runner protocol: ``from kstlib.ops.base import AbstractRunner``.

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

The protocol lives in :mod:`kstlib.ops.runner`; this module gives code written
for upstream kstlib the path it imports from.

Example:
    >>> from kstlib.ops.base import AbstractRunner
    >>> from kstlib.ops.tmux import TmuxRunner
    >>> isinstance(TmuxRunner(socket_name="kstlib-doc"), AbstractRunner)
    True
"""

from __future__ import annotations

from kstlib.ops.runner import AbstractRunner, Runner

__all__ = ["AbstractRunner", "Runner"]
