"""The swarm backend: a session is one Docker Swarm service, driven through the docker SDK.

Internal package: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

* :mod:`kstlib.ops.validators.swarm`: the options only a service has (replicas, placement, mode).
* :mod:`kstlib.ops.swarm.tasks`: a service's tasks read as a session status.
* :mod:`kstlib.ops.swarm.runner`: :class:`SwarmRunner`, the session operations.

The SDK calls and their error table are in :mod:`kstlib.ops.engines.swarm`.
Nothing is imported until used.

Example:
    >>> from kstlib.ops.swarm import SwarmRunner
    >>> SwarmRunner(base_url="unix:///tmp/kstlib-engines/swarm/manager.sock").backend.value
    'swarm'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kstlib.ops.swarm.runner import SwarmRunner

__all__ = ["SwarmRunner"]


def __getattr__(name: str) -> Any:
    if name == "SwarmRunner":
        from kstlib.ops.swarm.runner import SwarmRunner

        return SwarmRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
